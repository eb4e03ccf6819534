//! The validating walk over a define-resolved document: top level (§2), 1.3 mapping (§3),
//! tracks (§5), cues (§6), nodes (§7) and plugin entries (§12).

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::define::{index_path, key_path};
use super::layout::{parse_constraints, parse_insets, parse_layout};
use super::model::*;
use super::style::{parse_style, show, warn};
use super::{ParseOptions, Problem};

/// Plugin ids shipped with MotionText 2.0.0 (PLUGINS.md).
pub const V2_PLUGINS: [&str; 18] = [
    "fadein",
    "slideup",
    "scalepop",
    "elastic",
    "typewriter",
    "fliptype",
    "glitch",
    "glow",
    "magnetic",
    "rotation",
    "pulse",
    "spin",
    "bobY",
    "flames",
    "cwi-color",
    "cwi-loud",
    "cwi-whisper",
    "cwi-bouncing",
];

/// Stop collecting after this many problems (the rest are summarised).
const MAX_PROBLEMS: usize = 200;

struct Builder<'a> {
    opts: &'a ParseOptions,
    version: SourceVersion,
    problems: Vec<Problem>,
    warnings: Vec<Warning>,
    /// Cue and node ids (one namespace) → path where first used.
    ids: HashMap<String, String>,
    /// 1.3: every id written in the document, so generated ids never collide with them.
    reserved: HashSet<String>,
    node_count: usize,
    nodes_exceeded: bool,
}

/// Per-cue state threaded through the node walk.
struct CueCtx {
    /// Explicit (pre-inheritance) finite node display times, for §6.2.
    explicit_times: Vec<(String, (f64, f64))>,
}

fn collect_ids(v: &Value, out: &mut HashSet<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(id)) = m.get("id") {
                out.insert(id.clone());
            }
            if let Some(root) = m.get("root") {
                collect_ids(root, out);
            }
            if let Some(Value::Array(children)) = m.get("children") {
                children.iter().for_each(|c| collect_ids(c, out));
            }
        }
        Value::Array(items) => items.iter().for_each(|c| collect_ids(c, out)),
        _ => {}
    }
}

impl Builder<'_> {
    fn problem(&mut self, path: &str, message: impl Into<String>) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(Problem {
                path: path.to_string(),
                message: message.into(),
            });
        }
    }

    fn warn(&mut self, path: &str, message: impl Into<String>) {
        warn(&mut self.warnings, path, message);
    }

    /// Registers a cue or node id in the shared namespace.
    fn register_id(&mut self, id: &str, path: &str) {
        if let Some(first) = self.ids.get(id) {
            let first = first.clone();
            self.problem(
                path,
                format!("duplicate id \"{id}\" (first used at {first})"),
            );
        } else {
            self.ids.insert(id.to_string(), path.to_string());
        }
    }

    /// 1.3 id generation as the reference migrator does it: `<base>-<n>`, n from 1,
    /// bumped while the id is taken.
    fn generate_id(&mut self, base: &str) -> String {
        let mut n = 1usize;
        loop {
            let candidate = format!("{base}-{n}");
            if !self.reserved.contains(&candidate) && !self.ids.contains_key(&candidate) {
                return candidate;
            }
            n += 1;
        }
    }

    fn id_field(&mut self, obj: &Map<String, Value>, path: &str, generated_base: &str) -> String {
        let at = key_path(path, "id");
        let id = match obj.get("id") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            None | Some(Value::Null) if self.version == SourceVersion::V1_3 => {
                self.generate_id(generated_base)
            }
            Some(other) if self.version == SourceVersion::V1_3 && !other.is_string() => {
                self.problem(
                    &at,
                    format!("id must be a non-empty string, got {}", show(other)),
                );
                return self.generate_id(generated_base);
            }
            Some(other) => {
                self.problem(
                    &at,
                    format!("id must be a non-empty string, got {}", show(other)),
                );
                return String::new();
            }
            None => {
                self.problem(&at, "missing id (required in format 2.0)");
                return String::new();
            }
        };
        self.register_id(&id, &at);
        id
    }

    /// `[start, end]`: two finite numbers, start ≤ end.
    fn time_pair(&mut self, v: &Value, path: &str) -> Option<(f64, f64)> {
        let Some([a, b]) = v
            .as_array()
            .map(Vec::as_slice)
            .and_then(|s| <&[Value; 2]>::try_from(s).ok())
        else {
            self.problem(
                path,
                format!(
                    "must be an array of two numbers [start, end], got {}",
                    show(v)
                ),
            );
            return None;
        };
        let mut bound = |x: &Value, which: &str| -> Option<f64> {
            match x {
                Value::Number(n) => match n.as_f64().filter(|f| f.is_finite()) {
                    Some(f) => Some(f),
                    None => {
                        self.problem(path, format!("{which} {n} is not a finite number"));
                        None
                    }
                },
                Value::String(s) if s.trim_end().ends_with('%') => {
                    self.problem(
                        path,
                        format!("percent display times are not supported ({which} {s:?})"),
                    );
                    None
                }
                other => {
                    self.problem(
                        path,
                        format!("{which} must be a number, got {}", show(other)),
                    );
                    None
                }
            }
        };
        let start = bound(a, "start");
        let end = bound(b, "end");
        let (start, end) = (start?, end?);
        if end < start {
            self.problem(path, format!("end {end:?} is before start {start:?}"));
            return None;
        }
        Some((start, end))
    }

    /// A lenient pair for `baseTime` (invalid → warning, ignored).
    fn base_time(&mut self, v: Option<&Value>, path: &str) -> Option<(f64, f64)> {
        let v = v.filter(|v| !v.is_null())?;
        let pair = v.as_array().and_then(|a| match a.as_slice() {
            [x, y] => x
                .as_f64()
                .zip(y.as_f64())
                .filter(|(x, y)| x.is_finite() && y.is_finite()),
            _ => None,
        });
        if pair.is_none() {
            self.warn(
                path,
                format!("baseTime must be two numbers, got {}; ignored", show(v)),
            );
        }
        pair
    }

    fn stage(&mut self, doc: &Map<String, Value>) -> Stage {
        let mut stage = Stage {
            base_aspect: BaseAspect::Auto,
            safe_area: Insets::default(),
        };
        let Some(s) = doc.get("stage").and_then(Value::as_object) else {
            self.problem("stage", "missing or not an object");
            return stage;
        };
        match s.get("baseAspect").and_then(Value::as_str) {
            Some("16:9") => stage.base_aspect = BaseAspect::Wide16x9,
            Some("9:16") => stage.base_aspect = BaseAspect::Tall9x16,
            Some("auto") => stage.base_aspect = BaseAspect::Auto,
            other => self.problem(
                "stage.baseAspect",
                format!(
                    "must be \"16:9\", \"9:16\" or \"auto\", got {}",
                    other.map_or("nothing".into(), |o| format!("{o:?}"))
                ),
            ),
        }
        if let Some(sa) = s.get("safeArea") {
            stage.safe_area = parse_insets(sa).unwrap_or_default();
        }
        stage
    }

    fn timebase(&mut self, doc: &Map<String, Value>) {
        let Some(tb) = doc.get("timebase").and_then(Value::as_object) else {
            self.problem("timebase", "missing or not an object");
            return;
        };
        match tb.get("unit").and_then(Value::as_str) {
            Some("seconds") => {}
            // 1.3 timecode: times are still written in seconds.
            Some("tc") if self.version == SourceVersion::V1_3 => {}
            other => self.problem(
                "timebase.unit",
                format!(
                    "must be \"seconds\", got {}",
                    other.map_or("nothing".into(), |o| format!("{o:?}"))
                ),
            ),
        }
        if let Some(fps) = tb.get("fps") {
            if !fps.as_f64().is_some_and(|f| f.is_finite() && f > 0.0) {
                self.problem(
                    "timebase.fps",
                    format!("must be a positive number, got {}", show(fps)),
                );
            }
        }
    }

    fn track(&mut self, v: &Value, path: &str) -> Option<Track> {
        let Some(t) = v.as_object() else {
            self.problem(path, "track must be an object");
            return None;
        };
        let id = match t.get("id") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            other => {
                self.problem(
                    &key_path(path, "id"),
                    format!(
                        "track id must be a non-empty string, got {}",
                        other.map_or("nothing".into(), show)
                    ),
                );
                return None;
            }
        };
        let kind = match t.get("type").and_then(Value::as_str) {
            Some("subtitle") => TrackKind::Subtitle,
            _ => TrackKind::Free,
        };
        let layer = t
            .get("layer")
            .and_then(Value::as_f64)
            .map_or(0, |l| l as i64);
        let default_style = parse_style(
            t.get("defaultStyle").unwrap_or(&Value::Null),
            &key_path(path, "defaultStyle"),
            &mut self.warnings,
        );
        let default_box_style = t
            .get("defaultBoxStyle")
            .filter(|b| !b.is_null())
            .map(|b| parse_style(b, &key_path(path, "defaultBoxStyle"), &mut self.warnings));
        let default_constraints = parse_constraints(
            t.get("defaultConstraints").unwrap_or(&Value::Null),
            &key_path(path, "defaultConstraints"),
            &mut self.warnings,
        );
        let safe_area = t.get("safeArea").and_then(parse_insets).unwrap_or_default();
        Some(Track {
            id,
            kind,
            layer,
            default_style,
            default_box_style,
            default_constraints,
            safe_area,
        })
    }

    fn cue(&mut self, v: &Value, index: usize, tracks: &[Track]) -> Option<Cue> {
        let path = index_path("cues", index);
        let Some(c) = v.as_object() else {
            self.problem(&path, "cue must be an object");
            return None;
        };
        let id = self.id_field(c, &path, &format!("cue-{index}"));
        let track = match c.get("track") {
            Some(Value::String(t)) => match tracks.iter().position(|tr| &tr.id == t) {
                Some(i) => Some(i),
                None => {
                    self.problem(&key_path(&path, "track"), format!("unknown track \"{t}\""));
                    None
                }
            },
            other => {
                self.problem(
                    &key_path(&path, "track"),
                    format!(
                        "must name a track, got {}",
                        other.map_or("nothing".into(), show)
                    ),
                );
                None
            }
        };
        let explicit_lifetime = self.cue_lifetime(c, &path);
        let cue_display = match c.get("displayTime") {
            None | Some(Value::Null) => None,
            Some(dt) => self.time_pair(dt, &key_path(&path, "displayTime")),
        };
        let root_path = key_path(&path, "root");
        let Some(root_value) = c.get("root").filter(|r| r.is_object()) else {
            self.problem(&root_path, "missing or not an object");
            return None;
        };
        let mut ctx = CueCtx {
            explicit_times: Vec::new(),
        };
        let root_base = format!("cue-{index}");
        let root = self.node(
            root_value,
            &root_path,
            &root_base,
            cue_display,
            false,
            1,
            &mut ctx,
        );
        let dom_lifetime = match explicit_lifetime {
            Some(lt) => {
                for (p, (s, e)) in &ctx.explicit_times {
                    if *s < lt.0 || *e > lt.1 {
                        let message = format!(
                            "displayTime [{s:?}, {e:?}] is outside the cue's domLifetime [{:?}, {:?}]; it is cut off there",
                            lt.0, lt.1
                        );
                        warn(&mut self.warnings, p, message);
                    }
                }
                lt
            }
            None => auto_lifetime(&ctx.explicit_times),
        };
        Some(Cue {
            id,
            track: track?,
            dom_lifetime,
            root: root?,
        })
    }

    fn cue_lifetime(&mut self, c: &Map<String, Value>, path: &str) -> Option<(f64, f64)> {
        if let Some(lt) = c.get("domLifetime").filter(|v| !v.is_null()) {
            return self.time_pair(lt, &key_path(path, "domLifetime"));
        }
        if self.version != SourceVersion::V1_3 {
            return None;
        }
        let at = key_path(path, "hintTime");
        match c.get("hintTime") {
            None | Some(Value::Null) => None,
            // What the editor's migrator did with a number: [h, h + 5].
            Some(Value::Number(h)) => match h.as_f64().filter(|h| h.is_finite()) {
                Some(h) => Some((h, h + 5.0)),
                None => {
                    self.problem(&at, "must be a finite number");
                    None
                }
            },
            Some(Value::Object(o)) => match (
                o.get("start").and_then(Value::as_f64),
                o.get("end").and_then(Value::as_f64),
            ) {
                (Some(s), Some(e)) => self.time_pair(&Value::from(vec![s, e]), &at),
                _ => {
                    self.warn(&at, "hintTime needs numeric start and end; the lifetime is computed from the display times");
                    None
                }
            },
            Some(other) => {
                self.problem(
                    &at,
                    format!("must be a number or {{start, end}}, got {}", show(other)),
                );
                None
            }
        }
    }

    fn node_kind(&mut self, n: &Map<String, Value>, path: &str) -> Option<&'static str> {
        let (key, value) = if let Some(v) = n.get("eType") {
            ("eType", v)
        } else if let Some((k, v)) = ["type", "e_type"]
            .iter()
            .find_map(|k| n.get(*k).map(|v| (*k, v)))
        {
            self.warn(
                &key_path(path, k),
                format!("\"{k}\" is accepted as an alias of \"eType\" (the 2.0 reference renderer would not draw this node)"),
            );
            (k, v)
        } else {
            self.warn(
                path,
                "node has no eType; it is not drawn (nor its children)",
            );
            return None;
        };
        match value.as_str() {
            Some("group") => Some("group"),
            Some("text") => Some("text"),
            Some("image") => Some("image"),
            Some("video") => Some("video"),
            _ => {
                self.warn(
                    &key_path(path, key),
                    format!("unknown node type {}; the node is not drawn", show(value)),
                );
                None
            }
        }
    }

    fn node_display_time(&mut self, n: &Map<String, Value>, path: &str) -> Option<(f64, f64)> {
        if let Some(dt) = n.get("displayTime").filter(|v| !v.is_null()) {
            return self.time_pair(dt, &key_path(path, "displayTime"));
        }
        if self.version != SourceVersion::V1_3 {
            return None;
        }
        let start = n.get("absStart").filter(|v| !v.is_null());
        let end = n.get("absEnd").filter(|v| !v.is_null());
        if start.is_none() && end.is_none() {
            return None;
        }
        // The migrator's rule for a missing bound: start 0, end start + 1.
        let s = start.map_or(Some(0.0), Value::as_f64);
        let e = match end {
            Some(e) => e.as_f64(),
            None => s.map(|s| s + 1.0),
        };
        match (s, e) {
            (Some(s), Some(e)) => {
                self.time_pair(&Value::from(vec![s, e]), &key_path(path, "absStart"))
            }
            _ => {
                self.problem(path, "absStart/absEnd must be numbers");
                None
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn node(
        &mut self,
        v: &Value,
        path: &str,
        generated_base: &str,
        inherited_display: Option<(f64, f64)>,
        parent_effect_scope: bool,
        depth: usize,
        ctx: &mut CueCtx,
    ) -> Option<Node> {
        let Some(n) = v.as_object() else {
            self.problem(path, format!("node must be an object, got {}", show(v)));
            return None;
        };
        if depth > self.opts.limits.max_depth {
            let limit = self.opts.limits.max_depth;
            self.problem(path, format!("nodes nested deeper than {limit} levels"));
            return None;
        }
        self.node_count += 1;
        if self.node_count > self.opts.limits.max_nodes {
            if !self.nodes_exceeded {
                self.nodes_exceeded = true;
                let limit = self.opts.limits.max_nodes;
                self.problem(path, format!("more than {limit} nodes"));
            }
            return None;
        }
        let id = self.id_field(n, path, generated_base);
        let kind_name = self.node_kind(n, path);
        let display_time = self.node_display_time(n, path);
        if let Some(dt) = display_time {
            ctx.explicit_times.push((key_path(path, "displayTime"), dt));
        }
        let resolved_display_time = display_time.or(inherited_display);
        let has_effect_scope =
            parent_effect_scope || n.get("effectScope").is_some_and(|e| !e.is_null());

        let kind = match kind_name? {
            "group" => NodeKind::Group,
            "text" => NodeKind::Text {
                text: self.node_text(n, path),
            },
            "image" => NodeKind::Image {
                src: self.node_src(n, path),
            },
            _ => NodeKind::Video {
                src: self.node_src(n, path),
            },
        };
        let base_time = {
            let bt = n.get("baseTime").or_else(|| n.get("base_time"));
            self.base_time(bt, &key_path(path, "baseTime"))
        };
        let layout = parse_layout(
            n.get("layout").unwrap_or(&Value::Null),
            &key_path(path, "layout"),
            self.opts,
            &mut self.warnings,
        );
        let style = parse_style(
            n.get("style").unwrap_or(&Value::Null),
            &key_path(path, "style"),
            &mut self.warnings,
        );
        let box_style = match (&kind, n.get("boxStyle")) {
            (NodeKind::Group, Some(b)) if !b.is_null() => Some(parse_style(
                b,
                &key_path(path, "boxStyle"),
                &mut self.warnings,
            )),
            _ => None,
        };
        let plugins = self.plugins(n, path, &id);
        let mut children = Vec::new();
        if kind == NodeKind::Group {
            match n.get("children") {
                None | Some(Value::Null) => {}
                Some(Value::Array(items)) => {
                    let children_path = key_path(path, "children");
                    for (k, child) in items.iter().enumerate() {
                        let cp = index_path(&children_path, k);
                        let base = format!("{id}-child-{k}");
                        if let Some(c) = self.node(
                            child,
                            &cp,
                            &base,
                            resolved_display_time,
                            has_effect_scope,
                            depth + 1,
                            ctx,
                        ) {
                            children.push(c);
                        }
                        if self.nodes_exceeded {
                            break;
                        }
                    }
                }
                Some(other) => self.problem(
                    &key_path(path, "children"),
                    format!("must be an array, got {}", show(other)),
                ),
            }
        }
        Some(Node {
            id,
            path: path.to_string(),
            kind,
            display_time,
            resolved_display_time,
            base_time,
            layout,
            style,
            box_style,
            plugins,
            has_effect_scope,
            children,
        })
    }

    fn node_text(&mut self, n: &Map<String, Value>, path: &str) -> String {
        let value = match (n.get("text"), n.get("content")) {
            (Some(t), _) => t,
            (None, Some(c)) => {
                self.warn(
                    &key_path(path, "content"),
                    "\"content\" is accepted as an alias of \"text\" (the 2.0 reference renderer would not draw it)",
                );
                c
            }
            (None, None) => return String::new(),
        };
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        let chars = text.chars().count();
        if chars > self.opts.limits.max_text_chars {
            let limit = self.opts.limits.max_text_chars;
            self.problem(
                &key_path(path, "text"),
                format!("text has {chars} characters, more than the limit of {limit}"),
            );
        }
        text
    }

    /// The node's `src`, checked by the asset source rule (a problem when it leaves the asset
    /// folder or has another scheme).
    fn node_src(&mut self, n: &Map<String, Value>, path: &str) -> String {
        let src = self.node_src_value(n, path);
        if !src.is_empty() {
            if let Err(e) = classify_asset_src(&src) {
                self.problem(&key_path(path, "src"), format!("{src:?}: {e}"));
            }
        }
        src
    }

    /// The define assets renderd loads (SPEC §4.9, with the Recommended rules): top-level
    /// entries of type font or image with a string `src` or `url`; other asset types are kept
    /// for image/video nodes that name them. Sources are checked like node sources.
    fn define_assets(&mut self, top: &Map<String, Value>) -> Vec<DefineAsset> {
        let Some(Value::Object(define)) = top.get("define") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (key, v) in define {
            let Some(obj) = v.as_object() else { continue };
            let kind = match obj.get("type").and_then(Value::as_str) {
                Some("font") => AssetKind::Font,
                Some("image") => AssetKind::Image,
                Some("video") => AssetKind::Video,
                Some("audio") => AssetKind::Audio,
                _ => continue,
            };
            let at = key_path("define", key);
            let Some(src) = obj
                .get("src")
                .or_else(|| obj.get("url"))
                .and_then(Value::as_str)
            else {
                if matches!(kind, AssetKind::Font | AssetKind::Image) {
                    self.warn(&at, "asset has no string src or url; it is not loaded");
                }
                continue;
            };
            if let Err(e) = classify_asset_src(src) {
                self.problem(&key_path(&at, "src"), format!("{src:?}: {e}"));
                continue;
            }
            out.push(DefineAsset {
                key: key.clone(),
                kind,
                src: src.to_string(),
                family: obj
                    .get("family")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            });
        }
        out
    }

    fn node_src_value(&mut self, n: &Map<String, Value>, path: &str) -> String {
        match n.get("src") {
            Some(Value::String(s)) => s.clone(),
            // A define asset object (§7.4, recommended): its src or url.
            Some(Value::Object(asset)) => match asset
                .get("src")
                .or_else(|| asset.get("url"))
                .and_then(Value::as_str)
            {
                Some(s) => s.to_string(),
                None => {
                    self.warn(
                        &key_path(path, "src"),
                        "asset object has no src/url; nothing is drawn",
                    );
                    String::new()
                }
            },
            other => {
                self.warn(
                    &key_path(path, "src"),
                    format!(
                        "missing or invalid src {}; nothing is drawn",
                        other.map_or("(none)".into(), show)
                    ),
                );
                String::new()
            }
        }
    }

    fn plugins(&mut self, n: &Map<String, Value>, path: &str, node_id: &str) -> Vec<PluginEntry> {
        let mut entries: Vec<(String, &Value)> = Vec::new();
        if self.version == SourceVersion::V1_3 {
            if let Some(single) = n.get("plugin").filter(|p| !p.is_null()) {
                entries.push((key_path(path, "plugin"), single));
            }
        }
        match n.get("pluginChain") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                let chain = key_path(path, "pluginChain");
                entries.extend(
                    items
                        .iter()
                        .enumerate()
                        .map(|(k, e)| (index_path(&chain, k), e)),
                );
            }
            Some(other) => self.warn(
                &key_path(path, "pluginChain"),
                format!("must be an array, got {}; ignored", show(other)),
            ),
        }
        entries
            .into_iter()
            .filter_map(|(p, e)| self.plugin_entry(e, &p, node_id))
            .collect()
    }

    fn plugin_entry(&mut self, v: &Value, path: &str, node_id: &str) -> Option<PluginEntry> {
        let Some(e) = v.as_object() else {
            self.warn(
                path,
                format!("plugin entry must be an object, got {}; ignored", show(v)),
            );
            return None;
        };
        let Some(name) = e
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        else {
            self.warn(path, "plugin entry without a name; ignored");
            return None;
        };
        let (id, version) = match name.split_once('@') {
            Some((id, ver)) => (id.to_string(), Some(ver.to_string())),
            None => (name.to_string(), None),
        };
        self.check_plugin_known(&id, version.as_deref(), name, path, node_id);
        let params = match e.get("params") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(p) => p.clone(),
        };
        let time_offset = self.time_offset(e, path);
        let base_time = {
            let bt = e.get("baseTime").or_else(|| e.get("base_time"));
            self.base_time(bt, &key_path(path, "baseTime"))
        };
        let compose = match e.get("compose").and_then(Value::as_str) {
            None => Compose::Replace,
            Some("replace") => Compose::Replace,
            Some("add") => Compose::Add,
            Some("multiply") => Compose::Multiply,
            Some(other) => {
                self.warn(
                    &key_path(path, "compose"),
                    format!("unknown compose {other:?}; \"replace\" is used"),
                );
                Compose::Replace
            }
        };
        let kind_override = match e.get("type").and_then(Value::as_str) {
            Some("channel") => Some(PluginKind::Channel),
            Some("dom") => Some(PluginKind::Dom),
            Some("hybrid") => Some(PluginKind::Hybrid),
            _ => None,
        };
        Some(PluginEntry {
            name: name.to_string(),
            id,
            version,
            params,
            time_offset,
            base_time,
            compose,
            kind_override,
            path: path.to_string(),
        })
    }

    fn check_plugin_known(
        &mut self,
        id: &str,
        version: Option<&str>,
        name: &str,
        path: &str,
        node_id: &str,
    ) {
        let shipped = V2_PLUGINS.contains(&id);
        if !shipped {
            self.warn(
                path,
                format!("plugin \"{name}\" is not a MotionText 2.0.0 plugin (names are case-sensitive); node \"{node_id}\" renders without it"),
            );
        } else if let Some(v) = version.filter(|v| *v != PLUGIN_VERSION) {
            self.warn(
                path,
                format!("plugin \"{name}\": version {v} is not available (only 2.0.0); node \"{node_id}\" renders without it"),
            );
        } else if !self.opts.known_plugins.iter().any(|k| k == id) {
            self.warn(
                path,
                format!(
                    "plugin \"{id}\" is not implemented yet; node \"{node_id}\" renders without it"
                ),
            );
        }
    }

    fn time_offset(&mut self, e: &Map<String, Value>, path: &str) -> (OffsetBound, OffsetBound) {
        let snake = e.get("time_offset").filter(|v| !v.is_null());
        if let Some(s) = snake {
            let valid = s
                .as_array()
                .is_some_and(|a| a.len() == 2 && a.iter().all(valid_snake_bound));
            if !valid {
                self.problem(
                    &key_path(path, "time_offset"),
                    format!(
                        "must be two numbers or numeric strings with optional %, got {}",
                        show(s)
                    ),
                );
            }
        }
        let camel = e.get("timeOffset").filter(|v| !v.is_null());
        if let Some(t) = camel {
            return offset_pair(t);
        }
        if self.version != SourceVersion::V1_3 {
            return (OffsetBound::Percent(0.0), OffsetBound::Percent(100.0));
        }
        if let Some(s) = snake {
            return offset_pair(s);
        }
        self.legacy_window(e, path)
    }

    /// 1.3 `relStart`/`relEnd` (seconds), `relStartPct`/`relEndPct` (fractions), `t0`/`t1`;
    /// a missing bound is 0. An entry with none of these fields keeps the 2.0 default
    /// `["0%", "100%"]`, as the migrated 2.0 samples do (`plugin_showcase.json`).
    fn legacy_window(&mut self, e: &Map<String, Value>, path: &str) -> (OffsetBound, OffsetBound) {
        const FIELDS: [&str; 6] = ["relStart", "relEnd", "relStartPct", "relEndPct", "t0", "t1"];
        if !FIELDS
            .iter()
            .any(|f| e.get(*f).is_some_and(|v| !v.is_null()))
        {
            return (OffsetBound::Percent(0.0), OffsetBound::Percent(100.0));
        }
        let mut bound = |secs: &str, pct: &str, legacy: &str| -> OffsetBound {
            if let Some(s) = e.get(secs).and_then(Value::as_f64) {
                return OffsetBound::Seconds(s);
            }
            if let Some(p) = e.get(pct).and_then(Value::as_f64) {
                if !(0.0..=1.0).contains(&p) {
                    self.problem(
                        &key_path(path, pct),
                        format!("must be a fraction between 0 and 1, got {p}"),
                    );
                }
                return OffsetBound::Percent(p * 100.0);
            }
            if let Some(t) = e.get(legacy).and_then(Value::as_f64) {
                return OffsetBound::Seconds(t);
            }
            OffsetBound::Seconds(0.0)
        };
        let start = bound("relStart", "relStartPct", "t0");
        let end = bound("relEnd", "relEndPct", "t1");
        (start, end)
    }
}

fn valid_snake_bound(v: &Value) -> bool {
    match v {
        Value::Number(_) => true,
        Value::String(s) => {
            let s = s.trim();
            s.strip_suffix('%')
                .unwrap_or(s)
                .trim()
                .parse::<f64>()
                .is_ok_and(f64::is_finite)
        }
        _ => false,
    }
}

/// One `timeOffset` bound (§12.2): number → seconds, `"p%"` → percent, numeric string →
/// seconds, anything else → 0 seconds.
fn offset_bound(v: Option<&Value>) -> OffsetBound {
    match v {
        Some(Value::Number(n)) => {
            OffsetBound::Seconds(n.as_f64().filter(|f| f.is_finite()).unwrap_or(0.0))
        }
        Some(Value::String(s)) => {
            let s = s.trim();
            if let Some(p) = s.strip_suffix('%') {
                match p.trim().parse::<f64>() {
                    Ok(p) if p.is_finite() => OffsetBound::Percent(p),
                    _ => OffsetBound::Seconds(0.0),
                }
            } else {
                OffsetBound::Seconds(
                    s.parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite())
                        .unwrap_or(0.0),
                )
            }
        }
        _ => OffsetBound::Seconds(0.0),
    }
}

fn offset_pair(v: &Value) -> (OffsetBound, OffsetBound) {
    let arr = v.as_array();
    let at = |i: usize| arr.and_then(|a| a.get(i));
    (offset_bound(at(0)), offset_bound(at(1)))
}

/// §6.2: `[min(start) − 0.5, max(end) + 0.5]` over explicit display times, else `[−1, ∞]`.
fn auto_lifetime(times: &[(String, (f64, f64))]) -> (f64, f64) {
    if times.is_empty() {
        return (-1.0, f64::INFINITY);
    }
    let start = times.iter().map(|(_, t)| t.0).fold(f64::INFINITY, f64::min);
    let end = times
        .iter()
        .map(|(_, t)| t.1)
        .fold(f64::NEG_INFINITY, f64::max);
    (start - 0.5, end + 0.5)
}

/// Builds the scene from a define-resolved document.
pub(crate) fn build_scene(doc: &Value, opts: &ParseOptions) -> Result<Scene, Vec<Problem>> {
    let Some(top) = doc.as_object() else {
        return Err(vec![Problem {
            path: "$".into(),
            message: "the scenario must be a JSON object".into(),
        }]);
    };
    let mut b = Builder {
        opts,
        version: SourceVersion::V2_0,
        problems: Vec::new(),
        warnings: Vec::new(),
        ids: HashMap::new(),
        reserved: HashSet::new(),
        node_count: 0,
        nodes_exceeded: false,
    };
    match top.get("version") {
        Some(Value::String(v)) if v == "2.0" => {}
        Some(Value::String(v)) if v == "1.3" => b.version = SourceVersion::V1_3,
        Some(other) => b.problem(
            "version",
            format!(
                "unsupported version {}; expected \"2.0\" or \"1.3\"",
                show(other)
            ),
        ),
        None => b.problem("version", "missing; expected \"2.0\" or \"1.3\""),
    }
    b.timebase(top);
    let stage = b.stage(top);

    let mut tracks: Vec<Track> = Vec::new();
    match top.get("tracks") {
        Some(Value::Array(items)) => {
            let mut seen: HashMap<String, String> = HashMap::new();
            for (i, t) in items.iter().enumerate() {
                let path = index_path("tracks", i);
                if let Some(track) = b.track(t, &path) {
                    if let Some(first) = seen.get(&track.id) {
                        let message = format!(
                            "duplicate track id \"{}\" (first used at {first})",
                            track.id
                        );
                        b.problem(&key_path(&path, "id"), message);
                    } else {
                        seen.insert(track.id.clone(), key_path(&path, "id"));
                    }
                    tracks.push(track);
                }
            }
        }
        other => b.problem(
            "tracks",
            format!(
                "must be an array, got {}",
                other.map_or("nothing".into(), show)
            ),
        ),
    }

    let mut cues = Vec::new();
    match top.get("cues") {
        Some(Value::Array(items)) if items.len() > opts.limits.max_cues => {
            b.problem(
                "cues",
                format!(
                    "{} cues, more than the limit of {}",
                    items.len(),
                    opts.limits.max_cues
                ),
            );
        }
        Some(Value::Array(items)) => {
            if b.version == SourceVersion::V1_3 {
                collect_ids(&Value::Array(items.clone()), &mut b.reserved);
            }
            for (i, c) in items.iter().enumerate() {
                if let Some(cue) = b.cue(c, i, &tracks) {
                    cues.push(cue);
                }
                if b.nodes_exceeded || b.problems.len() >= MAX_PROBLEMS {
                    break;
                }
            }
        }
        other => b.problem(
            "cues",
            format!(
                "must be an array, got {}",
                other.map_or("nothing".into(), show)
            ),
        ),
    }

    let assets = b.define_assets(top);
    if !b.problems.is_empty() {
        if b.problems.len() >= MAX_PROBLEMS {
            b.problems.push(Problem {
                path: "$".into(),
                message: format!("stopped after {MAX_PROBLEMS} problems"),
            });
        }
        return Err(b.problems);
    }
    Ok(Scene {
        source_version: b.version,
        stage,
        tracks,
        cues,
        warnings: b.warnings,
        assets,
    })
}
