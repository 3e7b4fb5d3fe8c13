//! `cgofix report FILE`: a human summary of the JSON report(s) the shim
//! writes at exit (`CGOFIX_REPORT`). A file may hold several reports, one per
//! line, because child processes inherit the variable.
//!
//! Schema (stable):
//! `{"cgofix": "0.1.0", "pid": N, "exe": "PATH",
//!   "signals": {"suspend_signals": ["SIGPWR"], "onstack_added": N, "onstack_refused": N},
//!   "threads": {"created": N, "stack_raised": N},
//!   "napi": {"queue_async_work_calls": N},
//!   "modules": [{"path": "PATH", "go_version": "go1.27.3"|null,
//!                "buildmode": "c-shared"|"c-archive"|...|null, "napi_patched": bool,
//!                "go_init_hook": "ran"|"skipped"|"failed"|"not-go", "napi_async_calls": N}]}`
//!
//! `buildmode` is `interpose::goinfo::buildmode`'s answer, the one doctor
//! gives for the same file.
//!
//! Unknown fields are ignored and missing ones shown as `?` (older or newer
//! shims); a field of the wrong type, or anything that is not JSON, is an error.

use serde_json::Value;
use std::fmt::Write as _;

/// A field lookup that distinguishes "absent" (Ok(None)) from "wrong type" (Err).
struct Fields<'a> {
    v: &'a Value,
    ctx: String,
}

impl<'a> Fields<'a> {
    fn field<T>(
        &self,
        key: &str,
        want: &str,
        f: impl Fn(&'a Value) -> Option<T>,
    ) -> Result<Option<T>, String> {
        match self.v.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(x) => f(x)
                .map(Some)
                .ok_or_else(|| format!("{}\"{key}\" is not {want}", self.ctx)),
        }
    }
    fn num(&self, key: &str) -> Result<Option<u64>, String> {
        // Also an integral float such as 3.0, exactly representable.
        let exact = |x: &Value| {
            x.as_u64().or_else(|| {
                let f = x.as_f64()?;
                (f >= 0.0 && f.fract() == 0.0 && f <= 9_007_199_254_740_992.0).then_some(f as u64)
            })
        };
        self.field(key, "a non-negative integer", exact)
    }
    fn str(&self, key: &str) -> Result<Option<&'a str>, String> {
        self.field(key, "a string", Value::as_str)
    }
    fn bool(&self, key: &str) -> Result<Option<bool>, String> {
        self.field(key, "true or false", Value::as_bool)
    }
    fn sub(&self, key: &str) -> Result<Option<Fields<'a>>, String> {
        let ctx = format!("{}{key}.", self.ctx);
        self.field(key, "an object", |v| {
            v.is_object().then(|| Fields {
                v,
                ctx: ctx.clone(),
            })
        })
    }
}

fn n(x: Option<u64>) -> String {
    x.map_or("?".into(), |v| v.to_string())
}

/// Summarises one report object.
pub fn summarise(v: &Value) -> Result<String, String> {
    if !v.is_object() {
        return Err("not a JSON object".into());
    }
    let top = Fields {
        v,
        ctx: String::new(),
    };
    let Some(version) = top.str("cgofix")? else {
        return Err("no \"cgofix\" field: not a cgofix report".into());
    };
    let mut o = String::new();
    // `mode` is absent from reports written before the in-process mode.
    let mode = match top.str("mode")? {
        Some(m) => format!(", {m}"),
        None => String::new(),
    };
    let _ = writeln!(
        o,
        "process {} ({}), cgofix {version}{mode}",
        n(top.num("pid")?),
        top.str("exe")?.unwrap_or("?")
    );
    if let Some(k) = top.num("inactive_copies")?.filter(|&k| k > 0) {
        let _ = writeln!(
            o,
            "  {k} other copy(ies) of libcgofix.so loaded late stayed inactive"
        );
    }

    if let Some(s) = top.sub("signals")? {
        let names = s.field("suspend_signals", "a list of strings", |x| {
            x.as_array()?
                .iter()
                .map(|e| e.as_str())
                .collect::<Option<Vec<_>>>()
        })?;
        let names = match names {
            None => "?".to_string(),
            Some(v) if v.is_empty() => "none".to_string(),
            Some(v) => v.join(", "),
        };
        let _ = writeln!(
            o,
            "  signals: suspend signal(s) {names}; SA_ONSTACK added to {} handler(s), kept off {}",
            n(s.num("onstack_added")?),
            n(s.num("onstack_refused")?)
        );
    }
    if let Some(t) = top.sub("threads")? {
        let _ = writeln!(
            o,
            "  threads: {} created, {} stack(s) raised to the floor",
            n(t.num("created")?),
            n(t.num("stack_raised")?)
        );
    }
    if let Some(a) = top.sub("napi")? {
        let _ = writeln!(
            o,
            "  N-API: {} napi_queue_async_work call(s)",
            n(a.num("queue_async_work_calls")?)
        );
    }
    let modules = top.field("modules", "a list", |x| x.as_array().map(Vec::as_slice))?;
    match modules {
        None => {}
        Some([]) => {
            let _ = writeln!(o, "  modules: none loaded");
        }
        Some(list) => {
            let go = list
                .iter()
                .filter(|m| {
                    m.get("go_version").and_then(Value::as_str).is_some()
                        || m.get("buildmode").and_then(Value::as_str).is_some()
                })
                .count();
            let _ = writeln!(
                o,
                "  modules: {} loaded, {go} with a Go runtime",
                list.len()
            );
            for (i, m) in list.iter().enumerate() {
                if !m.is_object() {
                    return Err(format!("modules[{i}] is not an object"));
                }
                let f = Fields {
                    v: m,
                    ctx: format!("modules[{i}]."),
                };
                let go = match (f.str("go_version")?, f.str("buildmode")?) {
                    (None, None) => "not Go".to_string(),
                    (v, b) => format!(
                        "{} {}",
                        v.unwrap_or("Go (version unknown)"),
                        b.unwrap_or("?")
                    ),
                };
                let patched = match f.bool("napi_patched")? {
                    Some(true) => "napi_queue_async_work patched",
                    Some(false) => "not patched",
                    None => "patched ?",
                };
                let _ = writeln!(
                    o,
                    "    {}\n        {go}; {patched}; Go init hook: {}; {} async call(s)",
                    f.str("path")?.unwrap_or("?"),
                    f.str("go_init_hook")?.unwrap_or("?"),
                    n(f.num("napi_async_calls")?)
                );
            }
        }
    }
    Ok(o)
}

/// Every JSON value in `text`, separated by whitespace (one report per line,
/// or several documents appended to one file). The error says where, as
/// `line L column C: what` (columns in characters).
fn parse_stream(text: &str) -> Result<Vec<Value>, String> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .map_err(|e| {
            if e.classify() == serde_json::error::Category::Eof {
                // A truncated report (a process killed while writing it): the
                // position is the end of the input, whatever was expected there.
                let line = 1 + text.matches('\n').count();
                let col = 1 + text.rsplit('\n').next().unwrap_or("").chars().count();
                return format!("line {line} column {col}: unexpected end of input");
            }
            let full = e.to_string();
            let suffix = format!(" at line {} column {}", e.line(), e.column());
            let what = full.strip_suffix(&suffix).unwrap_or(&full);
            // serde_json counts bytes up to and including the offending one.
            let line_text = text
                .split('\n')
                .nth(e.line().saturating_sub(1))
                .unwrap_or("");
            let col = line_text
                .get(..e.column().min(line_text.len()))
                .map_or(e.column(), |s| s.chars().count());
            format!("line {} column {col}: {what}", e.line())
        })
}

/// Summarises every report in `text`; the error names the report (1-based)
/// or the JSON position.
pub fn summarise_all(text: &str) -> Result<(String, Vec<Value>), String> {
    let values = parse_stream(text).map_err(|e| format!("not valid JSON: {e}"))?;
    if values.is_empty() {
        return Err(
            "empty: no report was written (the shim writes it when the process exits normally)"
                .into(),
        );
    }
    let mut out = String::new();
    let many = values.len() > 1;
    if many {
        let _ = writeln!(out, "{} reports (one per process):", values.len());
    }
    for (i, v) in values.iter().enumerate() {
        let s = summarise(v).map_err(|e| {
            if many {
                format!("report {}: {e}", i + 1)
            } else {
                e
            }
        })?;
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&s);
    }
    Ok((out, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const SAMPLE: &str = r#"{"cgofix": "0.1.0", "pid": 4242, "exe": "/usr/bin/bun", "mode": "in-process", "inactive_copies": 1, "signals": {"suspend_signals": ["SIGPWR"], "onstack_added": 3, "onstack_refused": 1}, "threads": {"created": 12, "stack_raised": 5}, "napi": {"queue_async_work_calls": 20}, "modules": [{"path": "/app/addon.node", "go_version": "go1.27.3", "buildmode": "c-shared", "napi_patched": true, "go_init_hook": "ran", "napi_async_calls": 20}, {"path": "/app/plain.node", "go_version": null, "buildmode": null, "napi_patched": false, "go_init_hook": "not-go", "napi_async_calls": 0}]}"#;

    #[test]
    fn sample() {
        let (s, vals) = summarise_all(SAMPLE).unwrap();
        assert_eq!(vals.len(), 1);
        for want in [
            "process 4242 (/usr/bin/bun), cgofix 0.1.0, in-process",
            "1 other copy(ies) of libcgofix.so loaded late stayed inactive",
            "suspend signal(s) SIGPWR; SA_ONSTACK added to 3 handler(s), kept off 1",
            "threads: 12 created, 5 stack(s) raised",
            "N-API: 20 napi_queue_async_work",
            "modules: 2 loaded, 1 with a Go runtime",
            "/app/addon.node\n        go1.27.3 c-shared; napi_queue_async_work patched; Go init hook: ran; 20 async call(s)",
            "/app/plain.node\n        not Go; not patched; Go init hook: not-go; 0 async call(s)",
        ] {
            assert!(s.contains(want), "missing {want:?} in\n{s}");
        }
    }

    #[test]
    fn several_and_partial() {
        let two = format!("{SAMPLE}\n{{\"cgofix\":\"0.1.0\",\"pid\":7}}\n");
        let (s, vals) = summarise_all(&two).unwrap();
        assert_eq!(vals.len(), 2);
        assert!(s.starts_with("2 reports (one per process):\nprocess 4242"));
        assert!(s.contains("\nprocess 7 (?), cgofix 0.1.0\n"), "{s}");
    }

    #[test]
    fn positions() {
        let e = |t: &str| parse_stream(t).unwrap_err();
        assert_eq!(e("{\"a\": 1,"), "line 1 column 9: unexpected end of input");
        assert_eq!(
            e("{\"a\": 1}\n{\"b\":\n"),
            "line 3 column 1: unexpected end of input"
        );
        assert_eq!(e("garbage"), "line 1 column 1: expected value");
        assert_eq!(e("{}\n{\"é\": x}"), "line 2 column 7: expected value");
        assert_eq!(e("[1,]"), "line 1 column 4: trailing comma");
        assert_eq!(parse_stream("{\"a\":1}\n{\"a\":2}\n\n").unwrap().len(), 2);
        assert_eq!(parse_stream("  \n").unwrap(), Vec::<Value>::new());
    }

    #[test]
    fn round_trip_keeps_key_order() {
        // `report --json` writes the reports back as the shim wrote them.
        let text = r#"{"k":[1,"a\u0001\t",{"n":null}],"e":[],"o":{},"b":true,"a":"x\"\\\né😀"}"#;
        let vals = parse_stream(text).unwrap();
        assert_eq!(serde_json::to_string(&vals[0]).unwrap(), text);
        let pretty = serde_json::to_string_pretty(&vals).unwrap();
        assert_eq!(parse_stream(&pretty).unwrap(), vec![Value::Array(vals)]);
    }

    #[test]
    fn garbage_never_panics() {
        // Deterministic xorshift over a JSON-ish alphabet.
        let alphabet = b"{}[]\",:0123456789-+.eEtruefalsn \\u\n";
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let mut s = String::new();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            for _ in 0..(x % 40) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                s.push(alphabet[(x % alphabet.len() as u64) as usize] as char);
            }
            let _ = summarise_all(&s);
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000);
        assert!(
            summarise_all(&deep)
                .unwrap_err()
                .contains("recursion limit")
        );
    }

    #[test]
    fn errors() {
        let e = |t: &str| summarise_all(t).unwrap_err();
        assert!(e("").starts_with("empty"));
        assert_eq!(
            e("{\"cgofix\": "),
            "not valid JSON: line 1 column 12: unexpected end of input"
        );
        assert_eq!(e("[1]"), "not a JSON object");
        assert_eq!(
            e("{\"pid\": 1}"),
            "no \"cgofix\" field: not a cgofix report"
        );
        assert_eq!(
            e("{\"cgofix\":\"0.1.0\",\"pid\":\"x\"}"),
            "\"pid\" is not a non-negative integer"
        );
        for bad in ["-1", "1.5", "-0.5", "1e300"] {
            assert_eq!(
                e(&format!("{{\"cgofix\":\"0.1.0\",\"pid\":{bad}}}")),
                "\"pid\" is not a non-negative integer",
                "{bad}"
            );
        }
        let (s, _) = summarise_all("{\"cgofix\":\"0.1.0\",\"pid\":42.0}").unwrap();
        assert!(s.starts_with("process 42 "), "{s}");
        assert_eq!(
            e("{\"cgofix\":\"0.1.0\",\"threads\":{\"created\":-1}}"),
            "threads.\"created\" is not a non-negative integer"
        );
        assert_eq!(
            e(&format!(
                "{SAMPLE}\n{{\"cgofix\":\"0.1.0\",\"modules\":[{{\"napi_patched\":1}}]}}"
            )),
            "report 2: modules[0].\"napi_patched\" is not true or false"
        );
    }
}
