//! One golden test per plugin: `tests/golden/plugins/<plugin>.json` is a single text node shown
//! from 1 s to 5 s whose chain holds only that plugin, over exactly that window (`timeOffset`
//! `[0, 0]`, SPEC §12.2); frames at
//! the start, middle and end of the window are compared with reviewed PNGs
//! (`tests/golden/plugins/<plugin>_<t>.png`; `RENDERD_BLESS=1` rewrites them).

mod common;

use common::golden::check_golden_file;

/// Start, middle and end of the plugin window [1, 5].
const TIMES: [&str; 3] = ["1.200", "3.000", "4.800"];

fn check_plugin(plugin: &str) {
    let dir = common::repo("tests/golden/plugins");
    let scenario = dir.join(format!("{plugin}.json"));
    for at in TIMES {
        let name = format!("plugin_{plugin}_{at}");
        check_golden_file(
            &scenario,
            &name,
            at,
            &dir.join(format!("{plugin}_{at}.png")),
        );
    }
}

macro_rules! plugin_golden {
    ($($test:ident: $plugin:expr;)*) => {
        $( #[test] fn $test() { check_plugin($plugin); } )*
    };
}

plugin_golden! {
    fadein: "fadein";
    slideup: "slideup";
    scalepop: "scalepop";
    pulse: "pulse";
    spin: "spin";
    bob_y: "bobY";
    cwi_color: "cwi-color";
    // plug-a
    magnetic: "magnetic";
    fliptype: "fliptype";
    cwi_loud: "cwi-loud";
    cwi_whisper: "cwi-whisper";
    cwi_bouncing: "cwi-bouncing";
    // plug-b
    elastic: "elastic";
    typewriter: "typewriter";
    // rot
    rotation: "rotation";
    // fx
    glitch: "glitch";
    glow: "glow";
    // media
    flames: "flames";
}
