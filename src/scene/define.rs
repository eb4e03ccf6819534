//! `define` resolution (SPEC §4): every JSON string that starts with `define.` — anywhere
//! in the document, the `define` section included — is replaced by the value it names.
//!
//! Cycle rule: a reference is circular only when resolving it needs the very same
//! reference again (a true cycle). Unlike the reference renderer we do **not** reject a
//! define entry that refers to another path inside the same root entry
//! (`{"theme": {"a": "#fff", "b": "define.theme.a"}}` is accepted).
//!
//! Blow-up guard: every JSON value produced counts against a budget, so a define that is
//! referenced exponentially often (`a = [b, b, …]`, `b = [c, c, …]`) fails with a problem
//! instead of exhausting memory.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::Problem;

const PREFIX: &str = "define.";
/// Deepest JSON nesting the resolved document may have.
const MAX_JSON_DEPTH: usize = 256;
/// Longest chain of references that refer to references.
const MAX_REFERENCE_CHAIN: usize = 64;

/// Appends `.key` to a JSON path (`$` stands for the document root).
pub(crate) fn key_path(path: &str, key: &str) -> String {
    if path.is_empty() || path == "$" {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Appends `[index]` to a JSON path.
pub(crate) fn index_path(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

fn count_values(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count_values).sum(),
        Value::Object(o) => o.values().map(count_values).sum(),
        _ => 0,
    }
}

struct Resolver {
    define: Map<String, Value>,
    cache: HashMap<String, (Value, usize)>,
    budget_left: usize,
    budget: usize,
    exhausted: bool,
    problems: Vec<Problem>,
}

impl Resolver {
    fn problem(&mut self, path: &str, message: String) {
        self.problems.push(Problem {
            path: path.to_string(),
            message,
        });
    }

    fn spend(&mut self, n: usize, path: &str) -> bool {
        if self.exhausted {
            return false;
        }
        if n > self.budget_left {
            self.exhausted = true;
            let budget = self.budget;
            self.problem(
                path,
                format!(
                    "resolving define references produces more than {budget} JSON values \
                     (a define is referenced too many times)"
                ),
            );
            return false;
        }
        self.budget_left -= n;
        true
    }

    fn value(
        &mut self,
        v: &Value,
        path: &str,
        stack: &mut Vec<String>,
        depth: usize,
    ) -> Option<Value> {
        if depth > MAX_JSON_DEPTH {
            self.problem(
                path,
                format!("nesting deeper than {MAX_JSON_DEPTH} levels after define resolution"),
            );
            return None;
        }
        match v {
            Value::String(s) if s.starts_with(PREFIX) => self.reference(s, path, stack, depth),
            Value::Array(items) => {
                if !self.spend(1, path) {
                    return None;
                }
                let mut out = Vec::with_capacity(items.len());
                let mut ok = true;
                for (i, item) in items.iter().enumerate() {
                    match self.value(item, &index_path(path, i), stack, depth + 1) {
                        Some(r) => out.push(r),
                        None if self.exhausted => return None,
                        None => ok = false,
                    }
                }
                ok.then_some(Value::Array(out))
            }
            Value::Object(map) => {
                if !self.spend(1, path) {
                    return None;
                }
                let mut out = Map::new();
                let mut ok = true;
                for (k, item) in map {
                    match self.value(item, &key_path(path, k), stack, depth + 1) {
                        Some(r) => {
                            out.insert(k.clone(), r);
                        }
                        None if self.exhausted => return None,
                        None => ok = false,
                    }
                }
                ok.then_some(Value::Object(out))
            }
            other => self.spend(1, path).then(|| other.clone()),
        }
    }

    /// Resolves the reference string `r`, which stands at `path`.
    fn reference(
        &mut self,
        r: &str,
        path: &str,
        stack: &mut Vec<String>,
        depth: usize,
    ) -> Option<Value> {
        if let Some(start) = stack.iter().position(|s| s == r) {
            let mut chain: Vec<&str> = stack[start..].iter().map(String::as_str).collect();
            chain.push(r);
            self.problem(
                path,
                format!(
                    "Circular reference detected in define: {}",
                    chain.join(" -> ")
                ),
            );
            return None;
        }
        if let Some((v, n)) = self.cache.get(r) {
            let (v, n) = (v.clone(), *n);
            return self.spend(n, path).then_some(v);
        }
        if stack.len() >= MAX_REFERENCE_CHAIN {
            self.problem(
                path,
                format!("reference \"{r}\": define references nested more than {MAX_REFERENCE_CHAIN} deep"),
            );
            return None;
        }
        let mut segments = r[PREFIX.len()..].split('.');
        let root = segments.next().unwrap_or_default();
        let Some(root_value) = self.define.get(root).cloned() else {
            self.problem(
                path,
                format!("undefined define key \"{root}\" in reference \"{r}\""),
            );
            return None;
        };
        stack.push(r.to_string());
        let result = self.walk(r, root_value, segments, path, stack, depth);
        stack.pop();
        if let Some(v) = &result {
            self.cache
                .insert(r.to_string(), (v.clone(), count_values(v)));
        }
        result
    }

    fn walk<'s>(
        &mut self,
        r: &str,
        mut current: Value,
        segments: impl Iterator<Item = &'s str>,
        path: &str,
        stack: &mut Vec<String>,
        depth: usize,
    ) -> Option<Value> {
        // `resolved` is true once `current` came out of a resolved reference (it contains
        // no references any more).
        let mut resolved = false;
        for segment in segments {
            if !resolved {
                if let Value::String(s) = &current {
                    if s.starts_with(PREFIX) {
                        let inner = s.clone();
                        current = self.reference(&inner, path, stack, depth)?;
                        resolved = true;
                    }
                }
            }
            let next = match &current {
                Value::Object(map) => map.get(segment).cloned(),
                Value::Array(items) => segment
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| items.get(i).cloned()),
                _ => None,
            };
            match next {
                Some(v) => current = v,
                None => {
                    let what = match &current {
                        Value::Object(_) => "no property",
                        Value::Array(_) => "no element",
                        _ => "a non-object value has no property",
                    };
                    self.problem(path, format!("reference \"{r}\": {what} \"{segment}\""));
                    return None;
                }
            }
        }
        if resolved {
            let n = count_values(&current);
            self.spend(n, path).then_some(current)
        } else {
            self.value(&current, path, stack, depth)
        }
    }
}

/// Resolves every reference in `doc`. `max_values` caps the number of JSON values the
/// resolved document may contain.
pub(crate) fn resolve_document(doc: &Value, max_values: usize) -> Result<Value, Vec<Problem>> {
    let define = match doc.get("define") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            return Err(vec![Problem {
                path: "define".into(),
                message: "must be an object".into(),
            }])
        }
    };
    let mut resolver = Resolver {
        define,
        cache: HashMap::new(),
        budget_left: max_values,
        budget: max_values,
        exhausted: false,
        problems: Vec::new(),
    };
    let Value::Object(top) = doc else {
        return Err(vec![Problem {
            path: "$".into(),
            message: "the scenario must be a JSON object".into(),
        }]);
    };
    let mut out = Map::new();
    let mut stack = Vec::new();
    for (key, v) in top {
        let resolved = if key == "define" {
            // Walk each entry with its own name on the stack, so that a cycle is reported
            // from the entry it starts at (`define.a -> define.b -> define.a`).
            let Value::Object(entries) = v else { continue };
            let mut section = Map::new();
            for (name, entry) in entries {
                let at = key_path("define", name);
                stack.push(at.clone());
                let r = resolver.value(entry, &at, &mut stack, 2);
                stack.pop();
                if let Some(r) = r {
                    section.insert(name.clone(), r);
                }
                if resolver.exhausted {
                    break;
                }
            }
            Some(Value::Object(section))
        } else {
            resolver.value(v, key, &mut stack, 1)
        };
        if let Some(r) = resolved {
            out.insert(key.clone(), r);
        }
        if resolver.exhausted {
            break;
        }
    }
    if resolver.problems.is_empty() {
        Ok(Value::Object(out))
    } else {
        Err(resolver.problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resolve(doc: Value) -> Result<Value, Vec<Problem>> {
        resolve_document(&doc, 100_000)
    }

    #[test]
    fn replaces_references_everywhere_with_any_type() {
        let doc = json!({
            "define": {"c": "#fff", "style": {"color": "define.c"}, "t": [1, 2], "s": "define.style"},
            "tracks": [{"defaultStyle": "define.s"}],
            "cues": [{"displayTime": "define.t", "start": "define.t.0", "text": "define.c", "other": "x define.c"}]
        });
        let r = resolve(doc).unwrap();
        assert_eq!(r["tracks"][0]["defaultStyle"], json!({"color": "#fff"}));
        assert_eq!(r["cues"][0]["displayTime"], json!([1, 2]));
        assert_eq!(r["cues"][0]["start"], json!(1));
        assert_eq!(r["cues"][0]["text"], json!("#fff"));
        assert_eq!(r["cues"][0]["other"], json!("x define.c"));
        assert_eq!(r["define"]["s"], json!({"color": "#fff"}));
    }

    #[test]
    fn true_cycle_is_reported_with_its_chain() {
        let err = resolve(json!({"define": {"a": "define.b", "b": "define.a"}})).unwrap_err();
        assert!(err.iter().any(|p| p.path == "define.a"
            && p.message
                == "Circular reference detected in define: define.a -> define.b -> define.a"));
        let err = resolve(json!({"define": {"x": {"y": "define.x"}}})).unwrap_err();
        assert!(err[0].message.starts_with("Circular reference"), "{err:?}");
    }

    #[test]
    fn same_root_self_reference_is_allowed() {
        let r = resolve(json!({
            "define": {"theme": {"a": "#fff", "b": "define.theme.a"}},
            "x": "define.theme"
        }))
        .unwrap();
        assert_eq!(r["x"], json!({"a": "#fff", "b": "#fff"}));
    }

    #[test]
    fn undefined_key_and_missing_property_name_path_and_reference() {
        let err = resolve(json!({"define": {"a": {"b": 1}}, "cues": [{"c": "define.nope"}, {"d": "define.a.z"}, {"e": "define.a.b.c"}]}))
            .unwrap_err();
        assert_eq!(err.len(), 3);
        assert_eq!(err[0].path, "cues[0].c");
        assert!(
            err[0].message.contains("undefined define key \"nope\"")
                && err[0].message.contains("define.nope")
        );
        assert_eq!(err[1].path, "cues[1].d");
        assert!(err[1].message.contains("\"define.a.z\"") && err[1].message.contains("\"z\""));
        assert_eq!(err[2].path, "cues[2].e");
    }

    #[test]
    fn reference_through_intermediate_reference() {
        let r = resolve(
            json!({"define": {"a": {"b": "define.c"}, "c": {"d": [5, 6]}}, "x": "define.a.b.d.1"}),
        )
        .unwrap();
        assert_eq!(r["x"], json!(6));
    }

    #[test]
    fn exponential_expansion_is_capped() {
        let doc = json!({"define": {
            "a": ["define.b", "define.b", "define.b", "define.b", "define.b", "define.b", "define.b", "define.b"],
            "b": ["define.c", "define.c", "define.c", "define.c", "define.c", "define.c", "define.c", "define.c"],
            "c": ["define.d", "define.d", "define.d", "define.d", "define.d", "define.d", "define.d", "define.d"],
            "d": ["define.e", "define.e", "define.e", "define.e", "define.e", "define.e", "define.e", "define.e"],
            "e": ["define.f", "define.f", "define.f", "define.f", "define.f", "define.f", "define.f", "define.f"],
            "f": [1, 2, 3, 4, 5, 6, 7, 8]
        }, "x": ["define.a", "define.a", "define.a", "define.a"]});
        let err = resolve_document(&doc, 50_000).unwrap_err();
        assert_eq!(err.len(), 1);
        assert!(
            err[0].message.contains("more than 50000 JSON values"),
            "{err:?}"
        );
    }

    #[test]
    fn long_reference_chains_are_bounded() {
        let mut define = Map::new();
        for i in 0..200 {
            define.insert(format!("k{i}"), json!(format!("define.k{}", i + 1)));
        }
        define.insert("k200".into(), json!(1));
        let doc = json!({"define": define, "x": "define.k0"});
        let err = resolve(doc).unwrap_err();
        assert!(err.iter().any(|p| p.message.contains("nested more than")));
    }
}
