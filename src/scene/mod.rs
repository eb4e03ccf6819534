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
    let resolved = define::resolve_document(&doc, opts.limits.max_resolved_values).map_err(ScenarioError::Invalid)?;
    parse::build_scene(&resolved, opts).map_err(ScenarioError::Invalid)
}
