//! MotionText scenario → validated scene.
//!
//! [`parse_scenario`] reads a v1.3 or v2.0 scenario (SPEC §2–§12), resolves `define`
//! references, maps 1.3 onto 2.0 semantics and validates it. Hard errors are collected,
//! each with its JSON path, and returned together; non-fatal findings become
//! [`Scene::warnings`].
pub mod color;
pub mod css;
mod define;
mod layout;
pub mod model;
mod parse;
mod style;

pub use model::*;

/// Parse limits; the config file section `[limits]`.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest accepted scenario document (default 5 MiB).
    pub max_scenario_bytes: usize,
    pub max_cues: usize,
    /// Nodes in all cues together.
    pub max_nodes: usize,
    /// Characters in one text node.
    pub max_text_chars: usize,
    /// Node nesting depth (a cue root is depth 1).
    pub max_depth: usize,
    /// JSON values the document may contain after `define` resolution (guards against a
    /// define referenced exponentially many times).
    pub max_resolved_values: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_scenario_bytes: 5 * 1024 * 1024,
            max_cues: 1000,
            max_nodes: 50_000,
            max_text_chars: 5_000,
            max_depth: 32,
            max_resolved_values: 2_000_000,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ParseOptions {
    pub limits: Limits,
    /// Accept `layout.position: [x, y]` as `{x, y}`. Default false = the reference
    /// behaviour (array positions leave the node unpositioned, §11.2).
    pub accept_array_positions: bool,
    /// Plugin ids renderd implements; a warning is issued for every other id
    /// (empty = warn for every plugin).
    pub known_plugins: Vec<String>,
}

/// One reason a scenario was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// JSON path such as `cues[3].root.children[1].displayTime`; `$` = whole document.
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("scenario is {bytes} bytes, larger than the limit of {limit} bytes")]
    TooLarge { bytes: usize, limit: usize },
    #[error("scenario is not valid JSON at line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("invalid scenario: {}", join_problems(.0))]
    Invalid(Vec<Problem>),
}

fn join_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl ScenarioError {
    /// Every problem with its path; size and JSON errors are one problem at `$`.
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            ScenarioError::Invalid(p) => p.clone(),
            other => vec![Problem {
                path: "$".into(),
                message: other.to_string(),
            }],
        }
    }
}

/// Parses, resolves and validates a MotionText scenario (format 1.3 or 2.0).
pub fn parse_scenario(json: &[u8], opts: &ParseOptions) -> Result<Scene, ScenarioError> {
    let limit = opts.limits.max_scenario_bytes;
    if json.len() > limit {
        return Err(ScenarioError::TooLarge {
            bytes: json.len(),
            limit,
        });
    }
    let doc: serde_json::Value = serde_json::from_slice(json).map_err(|e| {
        let full = e.to_string();
        let position = format!(" at line {} column {}", e.line(), e.column());
        ScenarioError::Json {
            line: e.line(),
            column: e.column(),
            message: full.strip_suffix(&position).unwrap_or(&full).to_string(),
        }
    })?;
    let resolved = define::resolve_document(&doc, opts.limits.max_resolved_values)
        .map_err(ScenarioError::Invalid)?;
    parse::build_scene(&resolved, opts).map_err(ScenarioError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/motiontext/samples");

    fn parse(json: &str) -> Result<Scene, ScenarioError> {
        parse_scenario(json.as_bytes(), &ParseOptions::default())
    }

    fn problems(json: &str) -> Vec<Problem> {
        match parse(json) {
            Ok(_) => panic!("expected an error for {json}"),
            Err(e) => e.problems(),
        }
    }

    fn sample_files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
    }

    fn parse_file(path: &Path) -> Scene {
        let bytes =
            std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        parse_scenario(&bytes, &ParseOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn t(v: f64) -> String {
        if v.is_infinite() {
            format!("{v}")
        } else {
            // 1e-6 tolerance: compare at 6 decimals.
            let r = (v * 1e6).round() / 1e6;
            format!("{r:.6}")
        }
    }

    fn pair(p: Option<(f64, f64)>) -> String {
        p.map_or("-".into(), |(a, b)| format!("[{}, {}]", t(a), t(b)))
    }

    /// Normalised form: ids and paths dropped, times at 1e-6.
    fn normalise_node(n: &Node, prefix: &str, out: &mut Vec<String>) {
        out.push(format!("{prefix} kind {:?}", n.kind));
        out.push(format!("{prefix} displayTime {}", pair(n.display_time)));
        out.push(format!(
            "{prefix} resolved {}",
            pair(n.resolved_display_time)
        ));
        out.push(format!("{prefix} baseTime {}", pair(n.base_time)));
        out.push(format!("{prefix} layout {:?}", n.layout));
        out.push(format!("{prefix} style {:?}", n.style));
        out.push(format!("{prefix} boxStyle {:?}", n.box_style));
        out.push(format!("{prefix} effectScope {}", n.has_effect_scope));
        for (k, p) in n.plugins.iter().enumerate() {
            let b = |o: OffsetBound| match o {
                OffsetBound::Seconds(s) => format!("{}s", t(s)),
                OffsetBound::Percent(p) => format!("{}%", t(p)),
            };
            out.push(format!(
                "{prefix} plugin[{k}] {} params {} offset [{}, {}] base {} {:?} {:?}",
                p.name,
                p.params,
                b(p.time_offset.0),
                b(p.time_offset.1),
                pair(p.base_time),
                p.compose,
                p.kind_override
            ));
        }
        for (k, c) in n.children.iter().enumerate() {
            normalise_node(c, &format!("{prefix}.{k}"), out);
        }
    }

    fn normalise(s: &Scene) -> Vec<String> {
        let mut out = vec![format!(
            "stage {:?} {:?}",
            s.stage.base_aspect, s.stage.safe_area
        )];
        for tr in &s.tracks {
            out.push(format!(
                "track {} {:?} {} {:?} {:?} {:?} {:?}",
                tr.id,
                tr.kind,
                tr.layer,
                tr.default_style,
                tr.default_box_style,
                tr.default_constraints,
                tr.safe_area
            ));
        }
        for (i, c) in s.cues.iter().enumerate() {
            out.push(format!(
                "cue{i} track {} lifetime {}",
                c.track,
                pair(Some(c.dom_lifetime))
            ));
            normalise_node(&c.root, &format!("cue{i}"), &mut out);
        }
        out
    }

    fn diff(a: &[String], b: &[String]) -> Vec<(String, String)> {
        (0..a.len().max(b.len()))
            .filter(|&i| a.get(i) != b.get(i))
            .map(|i| {
                (
                    a.get(i).cloned().unwrap_or_default(),
                    b.get(i).cloned().unwrap_or_default(),
                )
            })
            .collect()
    }

    /// The numbers of the `offset [a%, b%]` part of a normalised plugin line, and the
    /// line without it.
    fn split_offsets(line: &str) -> Option<(String, Vec<f64>)> {
        let start = line.find("offset [")?;
        let end = start + line[start..].find(']')?;
        let nums = line[start + 8..end]
            .split(", ")
            .map(|x| x.trim_end_matches('%').parse::<f64>().ok())
            .collect::<Option<Vec<f64>>>()?;
        Some((format!("{}{}", &line[..start], &line[end..]), nums))
    }

    /// Every 1.3 sample and its migrated 2.0 counterpart parse to the same scene, except
    /// where the 2.0 file was produced by an older, lossy migrator (see the arms below).
    #[test]
    fn v13_and_v20_samples_are_equivalent() {
        let files = sample_files(&Path::new(SAMPLES).join("v1.3"));
        assert_eq!(files.len(), 9);
        for v13 in files {
            let name = v13
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            let s13 = parse_file(&v13);
            let s20 = parse_file(&Path::new(SAMPLES).join(&name));
            assert_eq!(s13.source_version, SourceVersion::V1_3);
            assert_eq!(s20.source_version, SourceVersion::V2_0);
            let d = diff(&normalise(&s13), &normalise(&s20));
            match name.as_str() {
                // The 2.0 files keep relStartPct/relEndPct f as "f%" (SPEC §3: read
                // literally) where §3 maps them to "f·100%", and rename waveY{frequency}
                // to bobY{cycles}. Everything else agrees.
                "animated_free_mixed.json" | "animated_subtitle.json" => {
                    assert!(!d.is_empty());
                    for (a, b) in &d {
                        assert!(
                            a.contains(" plugin[") && b.contains(" plugin["),
                            "{name}: {a} / {b}"
                        );
                        if a.contains(" waveY ") {
                            assert!(b.contains(" bobY "), "{name}: {b}");
                            continue;
                        }
                        let (ra, na) = split_offsets(a).unwrap_or_else(|| panic!("{a}"));
                        let (rb, nb) = split_offsets(b).unwrap_or_else(|| panic!("{b}"));
                        assert_eq!(ra, rb, "{name}");
                        for (x, y) in na.iter().zip(&nb) {
                            assert!((x - y * 100.0).abs() < 1e-6, "{name}: {a} / {b}");
                        }
                    }
                }
                // Different content altogether (other track, font sizes, cwi@1.0.0
                // plugins vs cwi-*@2.0.0, different cue timing): same cue count only.
                "cwi_demo_full.json" => {
                    assert!(!d.is_empty());
                    assert_eq!(s13.cues.len(), s20.cues.len());
                }
                _ => assert!(d.is_empty(), "{name} differs:\n{d:#?}"),
            }
        }
    }

    /// Every sample parses with renderd's plugin list, with no "not implemented" warning: its
    /// only plugin warnings are for names that are no 2.0.0 plugin (skipped, as the reference
    /// does), each naming the plugin and the node.
    #[test]
    fn samples_warn_only_about_foreign_plugins() {
        use std::collections::BTreeSet;
        for id in parse::V2_PLUGINS {
            assert!(crate::anim::is_implemented(id), "{id} is not implemented");
        }
        let opts = ParseOptions {
            known_plugins: crate::anim::IMPLEMENTED
                .iter()
                .map(|s| s.to_string())
                .collect(),
            ..ParseOptions::default()
        };
        let root = Path::new(SAMPLES);
        let mut unimplemented = BTreeSet::new();
        let mut foreign = BTreeSet::new();
        for dir in [root.to_path_buf(), root.join("v2"), root.join("v1.3")] {
            for f in sample_files(&dir) {
                let bytes = std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
                let scene = parse_scenario(&bytes, &opts)
                    .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
                for w in scene.warnings.iter().filter(|w| w.path.contains("plugin")) {
                    let quoted = w.message.split('"').nth(1).unwrap_or_default().to_string();
                    assert!(w.message.contains("; node \""), "{}: {w}", f.display());
                    if w.message.contains("is not implemented yet") {
                        unimplemented.insert(format!("{}: {w}", f.display()));
                    } else if w.message.contains("is not a MotionText 2.0.0 plugin") {
                        assert!(!parse::V2_PLUGINS.contains(&quoted.as_str()), "{w}");
                        foreign.insert(quoted);
                    } else {
                        assert!(
                            w.message.contains("is not available (only 2.0.0)"),
                            "{}: {w}",
                            f.display()
                        );
                    }
                }
            }
        }
        let expected_foreign = ["cwi@1.0.0", "fadeIn", "pop", "shakeX", "waveY"];
        assert_eq!(
            foreign,
            expected_foreign.iter().map(|s| s.to_string()).collect()
        );
        assert!(unimplemented.is_empty(), "{unimplemented:#?}");

        // Names in no sample but used by editors: skipped with a warning too.
        let cue = r#"[{"id": "c", "track": "t", "root": {"id": "x", "eType": "text", "text": "hi", "displayTime": [0, 1],
            "pluginChain": [{"name": "slideInLeft"}, {"name": "fadeOut"}, {"name": "fadein@2.0.0"}, {"name": "fadein@2.0.1"}]}}]"#;
        let s = parse_scenario(doc(cue, "{}").as_bytes(), &opts).unwrap_or_else(|e| panic!("{e}"));
        let w: Vec<String> = s.warnings.iter().map(Warning::to_string).collect();
        assert_eq!(w, [
            "cues[0].root.pluginChain[0]: plugin \"slideInLeft\" is not a MotionText 2.0.0 plugin (names are case-sensitive); node \"x\" renders without it",
            "cues[0].root.pluginChain[1]: plugin \"fadeOut\" is not a MotionText 2.0.0 plugin (names are case-sensitive); node \"x\" renders without it",
            "cues[0].root.pluginChain[3]: plugin \"fadein@2.0.1\": version 2.0.1 is not available (only 2.0.0); node \"x\" renders without it",
        ]);
        let resolved: Vec<Option<&str>> = s.cues[0]
            .root
            .plugins
            .iter()
            .map(PluginEntry::resolved_id)
            .collect();
        assert_eq!(
            resolved,
            [Some("slideInLeft"), Some("fadeOut"), Some("fadein"), None]
        );
    }

    #[test]
    fn every_sample_parses() {
        let root = Path::new(SAMPLES);
        let mut count = 0;
        for dir in [root.to_path_buf(), root.join("v2"), root.join("v1.3")] {
            for f in sample_files(&dir) {
                let scene = parse_file(&f);
                assert!(!scene.cues.is_empty(), "{}", f.display());
                count += 1;
            }
        }
        assert_eq!(count, 21);
    }

    const MINIMAL_HEAD: &str = r#""version": "2.0", "timebase": {"unit": "seconds"}, "stage": {"baseAspect": "16:9"},
        "tracks": [{"id": "t", "type": "subtitle"}]"#;

    fn doc(cues: &str, define: &str) -> String {
        format!("{{{MINIMAL_HEAD}, \"define\": {define}, \"cues\": {cues}}}")
    }

    fn text_cue(id: &str, node: &str, dt: &str) -> String {
        format!(
            r#"{{"id": "{id}", "track": "t", "root": {{"id": "{node}", "eType": "group", "children": [
                {{"id": "{node}-x", "eType": "text", "text": "hi", "displayTime": {dt}}}]}}}}"#
        )
    }

    #[test]
    fn basic_v20_details() {
        let s = parse(&doc(&format!("[{}]", text_cue("c", "g", "[1, 3]")), "{}")).unwrap();
        let cue = &s.cues[0];
        assert_eq!(cue.dom_lifetime, (0.5, 3.5));
        assert_eq!(cue.root.resolved_display_time, None);
        assert_eq!(cue.root.children[0].resolved_display_time, Some((1.0, 3.0)));
        assert_eq!(cue.root.children[0].path, "cues[0].root.children[0]");
        let s = parse(&doc(r#"[{"id": "c", "track": "t", "displayTime": [2, 4], "root": {"id": "r", "eType": "text", "text": 42}}]"#, "{}")).unwrap();
        let root = &s.cues[0].root;
        assert_eq!(root.kind, NodeKind::Text { text: "42".into() });
        assert_eq!(root.resolved_display_time, Some((2.0, 4.0)));
        assert_eq!(s.cues[0].dom_lifetime, (-1.0, f64::INFINITY));
    }

    #[test]
    fn bad_json_reports_position() {
        let err = parse("{\n  \"version\": \"2.0\",\n  oops\n}").unwrap_err();
        match &err {
            ScenarioError::Json {
                line,
                column,
                message,
            } => {
                assert_eq!((*line, *column), (3, 3));
                assert!(!message.contains("line 3"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(err.problems()[0].path, "$");
        assert!(err.to_string().contains("line 3, column 3"));
    }

    #[test]
    fn define_errors_and_use() {
        let p = problems(&doc("[]", r#"{"a": "define.b", "b": "define.a"}"#));
        assert!(
            p.iter().any(|p| p.message
                == "Circular reference detected in define: define.a -> define.b -> define.a"),
            "{p:?}"
        );
        let p = problems(&doc(
            &format!("[{}]", text_cue("c", "g", "\"define.times\"")),
            "{}",
        ));
        assert_eq!(p[0].path, "cues[0].root.children[0].displayTime");
        assert!(p[0].message.contains("define.times"));
        let s = parse(&doc(
            &format!("[{}]", text_cue("c", "g", "\"define.times\"")),
            r#"{"times": [1, 2]}"#,
        ))
        .unwrap();
        assert_eq!(s.cues[0].root.children[0].display_time, Some((1.0, 2.0)));
    }

    #[test]
    fn reversed_display_time_is_rejected_with_path() {
        let err = parse(&doc(
            &format!("[{}]", text_cue("c", "g", "[2.0, 1.2]")),
            "{}",
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid scenario: cues[0].root.children[0].displayTime: end 1.2 is before start 2.0"
        );
        let p = problems(&doc(
            &format!("[{}]", text_cue("c", "g", r#"["50%", "100%"]"#)),
            "{}",
        ));
        assert!(p[0].message.contains("percent display times"), "{p:?}");
    }

    #[test]
    fn duplicate_ids_share_one_namespace() {
        let p = problems(&doc(
            &format!(
                "[{}, {}]",
                text_cue("a", "g", "[0, 1]"),
                text_cue("g", "h", "[0, 1]")
            ),
            "{}",
        ));
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].path, "cues[1].id");
        assert!(p[0]
            .message
            .contains("duplicate id \"g\" (first used at cues[0].root.id)"));
    }

    #[test]
    fn unknown_track_and_too_many_cues() {
        let p = problems(&doc(
            r#"[{"id": "c", "track": "nope", "root": {"id": "r", "eType": "group"}}]"#,
            "{}",
        ));
        assert_eq!(p[0].path, "cues[0].track");
        assert!(p[0].message.contains("unknown track \"nope\""));
        let cues: Vec<String> = (0..3)
            .map(|i| text_cue(&format!("c{i}"), &format!("g{i}"), "[0, 1]"))
            .collect();
        let opts = ParseOptions {
            limits: Limits {
                max_cues: 2,
                ..Limits::default()
            },
            ..Default::default()
        };
        let err = parse_scenario(
            doc(&format!("[{}]", cues.join(",")), "{}").as_bytes(),
            &opts,
        )
        .unwrap_err();
        assert_eq!(err.problems()[0].path, "cues");
        assert!(err.problems()[0]
            .message
            .contains("3 cues, more than the limit of 2"));
    }

    #[test]
    fn too_large_is_rejected_before_parsing() {
        let opts = ParseOptions {
            limits: Limits {
                max_scenario_bytes: 10,
                ..Limits::default()
            },
            ..Default::default()
        };
        let err = parse_scenario(b"{\"version\": \"2.0\"}", &opts).unwrap_err();
        assert!(matches!(
            err,
            ScenarioError::TooLarge {
                bytes: 18,
                limit: 10
            }
        ));
        assert_eq!(err.problems()[0].path, "$");
    }

    #[test]
    fn node_limits() {
        let deep = {
            let mut n = r#"{"id": "leaf", "eType": "text", "text": "x"}"#.to_string();
            for i in 0..5 {
                n = format!(r#"{{"id": "n{i}", "eType": "group", "children": [{n}]}}"#);
            }
            n
        };
        let json = doc(
            &format!(r#"[{{"id": "c", "track": "t", "root": {deep}}}]"#),
            "{}",
        );
        let opts = |depth, nodes, chars| ParseOptions {
            limits: Limits {
                max_depth: depth,
                max_nodes: nodes,
                max_text_chars: chars,
                ..Limits::default()
            },
            ..Default::default()
        };
        assert!(parse_scenario(json.as_bytes(), &opts(6, 6, 1)).is_ok());
        let e = parse_scenario(json.as_bytes(), &opts(5, 6, 1)).unwrap_err();
        assert!(e.problems()[0].message.contains("deeper than 5"));
        let e = parse_scenario(json.as_bytes(), &opts(6, 5, 1)).unwrap_err();
        assert!(e.problems()[0].message.contains("more than 5 nodes"));
        let e = parse_scenario(json.as_bytes(), &opts(6, 6, 0)).unwrap_err();
        assert!(e.problems()[0].message.contains("more than the limit of 0"));
    }

    #[test]
    fn plugins_and_warnings() {
        let cue = r#"[{"id": "c", "track": "t", "root": {"id": "x", "eType": "text", "text": "hi", "displayTime": [0, 1],
            "pluginChain": [{"name": "glow"}, {"name": "fadeIn"}, {"name": "spin@2.0.0", "timeOffset": ["25%", "-0.5"], "compose": "add"},
                            {"name": "typewriter@1.0.0", "timeOffset": [true, 2], "baseTime": [0, 4], "type": "dom"}]}}]"#;
        let opts = ParseOptions {
            known_plugins: vec!["spin".into()],
            ..Default::default()
        };
        let s = parse_scenario(doc(cue, "{}").as_bytes(), &opts).unwrap();
        let p = &s.cues[0].root.plugins;
        assert_eq!(p.len(), 4);
        assert_eq!(p[0].params, serde_json::json!({}));
        assert_eq!(
            p[0].time_offset,
            (OffsetBound::Percent(0.0), OffsetBound::Percent(100.0))
        );
        assert_eq!(
            (p[2].id.as_str(), p[2].version.as_deref()),
            ("spin", Some("2.0.0"))
        );
        assert_eq!(
            p[2].time_offset,
            (OffsetBound::Percent(25.0), OffsetBound::Seconds(-0.5))
        );
        assert_eq!(p[2].compose, Compose::Add);
        assert_eq!(
            p[3].time_offset,
            (OffsetBound::Seconds(0.0), OffsetBound::Seconds(2.0))
        );
        assert_eq!(p[3].base_time, Some((0.0, 4.0)));
        assert_eq!(p[3].kind_override, Some(PluginKind::Dom));
        let w: Vec<String> = s.warnings.iter().map(Warning::to_string).collect();
        assert!(w.contains(&"cues[0].root.pluginChain[0]: plugin \"glow\" is not implemented yet; node \"x\" renders without it".to_string()), "{w:?}");
        assert!(w.iter().any(|w| w.starts_with(
            "cues[0].root.pluginChain[1]: plugin \"fadeIn\" is not a MotionText 2.0.0 plugin"
        )));
        assert!(w
            .iter()
            .any(|w| w.starts_with("cues[0].root.pluginChain[3]") && w.contains("version 1.0.0")));
        assert_eq!(w.len(), 3, "{w:?}");
        let bad = r#"[{"id": "c", "track": "t", "root": {"id": "x", "eType": "text", "displayTime": [0, 1], "pluginChain": [{"name": "spin", "time_offset": ["a", 1]}]}}]"#;
        assert_eq!(
            problems(&doc(bad, "{}"))[0].path,
            "cues[0].root.pluginChain[0].time_offset"
        );
    }

    #[test]
    fn aliases_warn_and_lifetime_warning() {
        let cue = r#"[{"id": "c", "track": "t", "domLifetime": [0, 2], "root": {"id": "x", "type": "text", "content": "hi", "displayTime": [1, 3]}}]"#;
        let s = parse(&doc(cue, "{}")).unwrap();
        assert_eq!(s.cues[0].root.kind, NodeKind::Text { text: "hi".into() });
        let paths: Vec<&str> = s.warnings.iter().map(|w| w.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "cues[0].root.type",
                "cues[0].root.content",
                "cues[0].root.displayTime"
            ]
        );
    }

    #[test]
    fn v13_mapping() {
        let json = r#"{"version": "1.3", "timebase": {"unit": "tc"}, "stage": {"baseAspect": "9:16"},
            "tracks": [{"id": "t", "type": "free"}],
            "cues": [{"id": "cue-0-1", "track": "t", "hintTime": {"start": 1, "end": 9}, "root": {"e_type": "group", "children": [
                {"e_type": "text", "text": "a", "absStart": 2, "absEnd": 4,
                 "plugin": {"name": "spin", "relStart": -0.5, "relEndPct": 0.5},
                 "pluginChain": [{"name": "pulse", "t0": 1, "t1": 2}]}]}}]}"#;
        let s = parse(json).unwrap();
        let cue = &s.cues[0];
        assert_eq!(cue.dom_lifetime, (1.0, 9.0));
        assert_eq!(cue.root.id, "cue-0-2", "cue-0-1 is taken by the cue id");
        let child = &cue.root.children[0];
        assert_eq!(child.id, "cue-0-2-child-0-1");
        assert_eq!(child.display_time, Some((2.0, 4.0)));
        assert_eq!(child.plugins[0].id, "spin");
        assert_eq!(
            child.plugins[0].time_offset,
            (OffsetBound::Seconds(-0.5), OffsetBound::Percent(50.0))
        );
        assert_eq!(
            child.plugins[1].time_offset,
            (OffsetBound::Seconds(1.0), OffsetBound::Seconds(2.0))
        );
        assert_eq!(s.stage.base_aspect, BaseAspect::Tall9x16);
    }

    #[test]
    fn version_and_stage_checks() {
        let p = problems(
            r#"{"version": "3.0", "timebase": {"unit": "frames"}, "stage": {"baseAspect": "4:3"}, "tracks": [], "cues": []}"#,
        );
        let paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["version", "timebase.unit", "stage.baseAspect"]);
    }

    // media: define assets and asset sources.
    #[test]
    fn define_assets_are_collected_and_sources_checked() {
        let define = r#"{"brand": {"type": "font", "url": "fonts/brand.woff2", "family": "Brand"},
            "logo": {"type": "image", "src": "./logo.png", "url": "ignored.png"},
            "clip": {"type": "video", "url": "https://cdn.example.com/c.mp4"},
            "nofile": {"type": "font", "family": "X"}, "colour": "red", "n": 3}"#;
        let cue = r#"[{"id": "c", "track": "t", "root": {"id": "i", "eType": "image", "src": "define.logo", "displayTime": [0, 1]}}]"#;
        let s = parse(&doc(cue, define)).unwrap_or_else(|e| panic!("{e}"));
        let assets: Vec<(&str, AssetKind, &str, Option<&str>)> = s
            .assets
            .iter()
            .map(|a| (a.key.as_str(), a.kind, a.src.as_str(), a.family.as_deref()))
            .collect();
        assert_eq!(
            assets,
            [
                ("brand", AssetKind::Font, "fonts/brand.woff2", Some("Brand")),
                ("logo", AssetKind::Image, "./logo.png", None),
                (
                    "clip",
                    AssetKind::Video,
                    "https://cdn.example.com/c.mp4",
                    None
                ),
            ]
        );
        assert_eq!(
            s.cues[0].root.kind,
            NodeKind::Image {
                src: "./logo.png".into()
            }
        );
        assert!(s
            .warnings
            .iter()
            .any(|w| w.path == "define.nofile" && w.message.contains("no string src or url")));

        let bad = r#"[{"id": "c", "track": "t", "root": {"id": "g", "eType": "group", "displayTime": [0, 1], "children": [
            {"id": "a", "eType": "image", "src": "../up.png"}, {"id": "b", "eType": "image", "src": "/etc/passwd"},
            {"id": "v", "eType": "video", "src": "file:///x.mp4"}, {"id": "d", "eType": "image", "src": "a/../../b.png"},
            {"id": "ok", "eType": "image", "src": "pics/./a.png"}]}}]"#;
        let p = problems(&doc(
            bad,
            r#"{"f": {"type": "font", "src": "C:\\fonts\\x.ttf"}}"#,
        ));
        let got: Vec<(&str, &str)> = p
            .iter()
            .map(|p| (p.path.as_str(), p.message.as_str()))
            .collect();
        let leaves = "the path leaves the asset folder (absolute, or with '.' / '..' segments)";
        assert_eq!(
            got,
            [
                ("cues[0].root.children[0].src", &*format!("\"../up.png\": {leaves}")),
                ("cues[0].root.children[1].src", &*format!("\"/etc/passwd\": {leaves}")),
                (
                    "cues[0].root.children[2].src",
                    "\"file:///x.mp4\": scheme 'file' is not allowed (a relative path inside the asset folder, or https://)"
                ),
                ("cues[0].root.children[3].src", &*format!("\"a/../../b.png\": {leaves}")),
                (
                    "define.f.src",
                    "\"C:\\\\fonts\\\\x.ttf\": scheme 'C' is not allowed (a relative path inside the asset folder, or https://)"
                ),
            ]
        );
    }

    #[test]
    fn asset_sources_follow_the_lexical_rule() {
        use std::path::PathBuf;
        assert_eq!(
            classify_asset_src("./a/b.png"),
            Ok(AssetSrc::Relative(PathBuf::from("a/b.png")))
        );
        assert_eq!(
            classify_asset_src("HTTPS://x.example/a.png"),
            Ok(AssetSrc::Remote("HTTPS://x.example/a.png".into()))
        );
        assert_eq!(classify_asset_src("  "), Err(AssetSrcError::Empty));
        assert_eq!(
            classify_asset_src("data:image/png;base64,AAAA"),
            Err(AssetSrcError::Scheme("data".into()))
        );
        assert_eq!(
            classify_asset_src("a\\..\\b"),
            Err(AssetSrcError::BadCharacters)
        );
        for outside in ["..", "../a", "a/..", "/a", "./../a"] {
            assert_eq!(
                classify_asset_src(outside),
                Err(AssetSrcError::OutsideBase),
                "{outside}"
            );
        }
    }

    #[test]
    fn limits_deserialize_with_defaults() {
        let l: Limits = serde_json::from_str(r#"{"max_cues": 5}"#).unwrap();
        assert_eq!(l.max_cues, 5);
        assert_eq!(l.max_scenario_bytes, 5 * 1024 * 1024);
        assert!(serde_json::from_str::<Limits>(r#"{"bogus": 1}"#).is_err());
    }
}
