#!/usr/bin/env python3
"""Writes the benchmark's captions twice: a MotionText v2.0 scenario and the same captions as
ASS (for ffmpeg's libass burn-in). N cues of word-level animated captions over `seconds`."""
import json
import os
import sys

WORDS = ("renderd draws every caption on the GPU while ffmpeg decodes and x264 encodes "
         "자막 하나하나 애니메이션으로 나타납니다 words slide up pop in and change colour").split()
PLUGINS = ["fadein", "slideup", "scalepop", "cwi-color"]
if os.environ.get("ALL_PLUGINS"):
    # Every MotionText 2.0.0 plugin, one per cue in turn (issue 4's benchmark).
    PLUGINS = ["fadein", "slideup", "scalepop", "elastic", "typewriter", "fliptype", "glitch", "glow",
               "magnetic", "rotation", "pulse", "spin", "bobY", "flames", "cwi-color", "cwi-loud",
               "cwi-whisper", "cwi-bouncing"]
if os.environ.get("LATIN_ONLY"):
    # For machines that only carry Latin fonts (the device check).
    WORDS = [w for w in WORDS if w.isascii()]


def cues(seconds: float, count: int):
    span = seconds / count
    for c in range(count):
        start, end = round(c * span + 0.05, 3), round((c + 1) * span - 0.05, 3)
        words = [WORDS[(c * 5 + i) % len(WORDS)] for i in range(5)]
        yield c, start, end, words


def scenario(seconds, count):
    out = []
    for c, start, end, words in cues(seconds, count):
        d = (end - start) / len(words)
        children = []
        for i, w in enumerate(words):
            b0 = round(start + i * d, 3)
            plugin = PLUGINS[c % len(PLUGINS)]
            offset = ["0%", "-10%"] if plugin == "cwi-color" else [-0.3, 0.3]
            children.append({"id": f"c{c}w{i}", "eType": "text", "text": w, "baseTime": [b0, round(b0 + d * 0.9, 3)],
                             "pluginChain": [{"name": plugin, "timeOffset": offset}]})
        out.append({"id": f"c{c}", "track": "caption", "domLifetime": [start, end],
                    "root": {"id": f"c{c}g", "eType": "group", "displayTime": [start, end],
                             "layout": {"position": {"x": 0.5, "y": 0.925}, "anchor": "bc",
                                        "childrenLayout": {"mode": "flow", "direction": "horizontal", "wrap": True,
                                                           "gap": 0.005, "align": "center", "justify": "center"}},
                             "style": {"backgroundColor": "rgba(0,0,0,0.75)", "padding": "8px 16px",
                                       "borderRadius": "4px"},
                             "children": children}})
    return {"version": "2.0", "timebase": {"unit": "seconds"}, "stage": {"baseAspect": "16:9"},
            "tracks": [{"id": "caption", "type": "subtitle", "layer": 1,
                        "defaultStyle": {"fontSizeRel": 0.07, "fontFamily": "Arial, sans-serif",
                                         "color": "#ffffff", "align": "center"}}],
            "cues": out}


def ts(t):
    h, rem = divmod(t, 3600)
    m, s = divmod(rem, 60)
    return f"{int(h)}:{int(m):02d}:{s:05.2f}"


def ass(seconds, count, height):
    font = round(height * 0.07)
    lines = ["[Script Info]", "ScriptType: v4.00+", "PlayResX: 1920", f"PlayResY: {height}", "",
             "[V4+ Styles]",
             "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, "
             "Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, "
             "Alignment, MarginL, MarginR, MarginV, Encoding",
             f"Style: Cap,Liberation Sans,{font},&H00FFFFFF,&H00FFFFFF,&H40000000,&H40000000,0,0,0,0,100,100,0,0,"
             f"3,12,0,2,20,20,{round(height * 0.075)},1", "",
             "[Events]", "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text"]
    for c, start, end, words in cues(seconds, count):
        d = (end - start) / len(words)
        parts = []
        for i, w in enumerate(words):
            t0 = int((i * d) * 1000)
            t1 = t0 + 300
            # Each word fades in and pops from 90 % at its own time, like the plugins.
            parts.append(f"{{\\alpha&HFF&\\fscx90\\fscy90\\t({t0},{t1},\\alpha&H00&\\fscx100\\fscy100)}}{w}")
        lines.append(f"Dialogue: 0,{ts(start)},{ts(end)},Cap,,0,0,0,,{' '.join(parts)}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    seconds, count, out_json, out_ass = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    with open(out_json, "w", encoding="utf-8") as f:
        json.dump(scenario(seconds, count), f, ensure_ascii=False)
    with open(out_ass, "w", encoding="utf-8") as f:
        f.write(ass(seconds, count, 1080))
