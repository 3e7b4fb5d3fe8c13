//! The exit report (`CGOFIX_REPORT`, README "Exit report"): one JSON object
//! per process and line. Parsed with serde_json and checked against the
//! documented keys, so a test asserts on fields, never on substrings.

use serde_json::Value;
use std::path::Path;

/// The report lines of `path` (none if the file does not exist), each
/// parsed and checked with [`parse`].
pub fn read(path: &Path) -> Vec<Value> {
    match std::fs::read_to_string(path) {
        Ok(text) => text.lines().map(parse).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

/// The single report line of `path`; panics unless there is exactly one.
pub fn read_one(path: &Path) -> Value {
    let mut all = read(path);
    assert_eq!(
        all.len(),
        1,
        "{}: want one report line (one process): {all:#?}",
        path.display()
    );
    all.pop().unwrap()
}

/// The report lines within other output (`CGOFIX_REPORT=stderr`): the
/// lines that start with `{"cgofix":`.
pub fn in_output(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| l.starts_with("{\"cgofix\":"))
        .map(parse)
        .collect()
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_u64() => "u64",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Parses one report line and checks every documented key is there with
/// its documented type (extra keys are allowed: the report may grow).
pub fn parse(line: &str) -> Value {
    let v: Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("report is not JSON ({e}): {line}"));
    let want = |ptr: &str, kinds: &[&str]| {
        let got = v
            .pointer(ptr)
            .unwrap_or_else(|| panic!("report has no {ptr}: {line}"));
        assert!(
            kinds.contains(&kind(got)),
            "report {ptr} is {} ({got}), want {kinds:?}: {line}",
            kind(got)
        );
    };
    want("/cgofix", &["string"]);
    want("/mode", &["string"]);
    let mode = v["mode"].as_str().unwrap();
    // An inactive copy never writes a report: the active one does.
    assert!(
        ["preload", "in-process"].contains(&mode),
        "mode {mode:?} is not one of the documented values: {line}"
    );
    want("/inactive_copies", &["u64"]);
    want("/pid", &["u64"]);
    want("/exe", &["string"]);
    want("/signals/suspend_signals", &["array"]);
    want("/signals/onstack_added", &["u64"]);
    want("/signals/onstack_refused", &["u64"]);
    want("/signals/sigpipe_kept", &["u64"]);
    want("/signals/suspend_fix", &["string"]);
    let fix = v["signals"]["suspend_fix"].as_str().unwrap();
    assert!(
        ["applied", "not-needed", "off"].contains(&fix),
        "suspend_fix {fix:?} is not one of the documented values: {line}"
    );
    want("/go_runtimes", &["u64"]);
    want("/threads/created", &["u64"]);
    want("/threads/stack_raised", &["u64"]);
    want("/napi/queue_async_work_calls", &["u64"]);
    want("/modules", &["array"]);
    for s in v["signals"]["suspend_signals"].as_array().unwrap() {
        assert!(
            s.as_str().is_some_and(|s| s.starts_with("SIG")),
            "suspend signal {s} is not a name: {line}"
        );
    }
    for (i, _) in v["modules"].as_array().unwrap().iter().enumerate() {
        let m = |k: &str| format!("/modules/{i}/{k}");
        want(&m("path"), &["string"]);
        want(&m("go_version"), &["string", "null"]);
        want(&m("buildmode"), &["string", "null"]);
        want(&m("napi_patched"), &["bool"]);
        want(&m("go_init_hook"), &["string"]);
        want(&m("napi_async_calls"), &["u64"]);
        let hook = v.pointer(&m("go_init_hook")).unwrap().as_str().unwrap();
        assert!(
            ["ran", "skipped", "failed", "not-go"].contains(&hook),
            "go_init_hook {hook:?} is not one of the documented values: {line}"
        );
    }
    v
}

/// The module object whose path ends with `/name`; panics unless exactly
/// one matches.
pub fn module<'a>(report: &'a Value, name: &str) -> &'a Value {
    let suffix = format!("/{name}");
    let found: Vec<&Value> = modules(report)
        .iter()
        .filter(|m| m["path"].as_str().is_some_and(|p| p.ends_with(&suffix)))
        .collect();
    match found.as_slice() {
        [m] => m,
        _ => panic!(
            "want exactly one module {name}, found {}: {report}",
            found.len()
        ),
    }
}

pub fn modules(report: &Value) -> &Vec<Value> {
    report["modules"]
        .as_array()
        .unwrap_or_else(|| panic!("no modules: {report}"))
}

/// The unsigned number at `ptr` (a JSON pointer such as
/// `/threads/created`, or a plain key of `v`).
pub fn num(v: &Value, ptr: &str) -> u64 {
    at(v, ptr)
        .as_u64()
        .unwrap_or_else(|| panic!("{ptr} is not a count in {v}"))
}

/// The string at `ptr` (as for [`num`]).
pub fn text<'a>(v: &'a Value, ptr: &str) -> &'a str {
    at(v, ptr)
        .as_str()
        .unwrap_or_else(|| panic!("{ptr} is not a string in {v}"))
}

fn at<'a>(v: &'a Value, ptr: &str) -> &'a Value {
    let found = if ptr.starts_with('/') {
        v.pointer(ptr)
    } else {
        v.get(ptr)
    };
    found.unwrap_or_else(|| panic!("no {ptr} in {v}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// README's example, as the library writes it (one line, no blanks).
    const SAMPLE: &str = r#"{"cgofix":"0.1.0","mode":"preload","inactive_copies":0,"pid":1234,"exe":"/usr/local/bin/bun","signals":{"suspend_signals":["SIGPWR"],"suspend_fix":"applied","onstack_added":3,"onstack_refused":1,"sigpipe_kept":1},"threads":{"created":11,"stack_raised":5},"napi":{"queue_async_work_calls":21},"go_runtimes":1,"modules":[{"path":"/app/addon.node","go_version":"go1.27.3","buildmode":"c-shared","napi_patched":true,"go_init_hook":"ran","napi_async_calls":21},{"path":"/app/plain.node","go_version":null,"buildmode":null,"napi_patched":true,"go_init_hook":"not-go","napi_async_calls":0}]}"#;

    #[test]
    fn parses_and_finds_fields() {
        let r = parse(SAMPLE);
        assert_eq!(num(&r, "/threads/created"), 11);
        assert_eq!(num(&r, "pid"), 1234);
        let m = module(&r, "addon.node");
        assert_eq!(text(m, "go_version"), "go1.27.3");
        assert_eq!(m["napi_patched"], true);
        assert!(module(&r, "plain.node")["go_version"].is_null());
        let found = in_output(&format!("noise\n{SAMPLE}\nmore noise {{\"cgofix\":\n"));
        assert_eq!(found, vec![r]);
    }

    #[test]
    fn rejects_what_the_readme_does_not_allow() {
        for (bad, why) in [
            (SAMPLE.replace("\"pid\":1234", "\"pid\":\"1234\""), "pid"),
            (SAMPLE.replace("\"ran\"", "\"done\""), "go_init_hook"),
            (SAMPLE.replace("\"applied\"", "\"yes\""), "suspend_fix"),
            (SAMPLE.replace("\"preload\"", "\"inactive\""), "mode"),
            (
                SAMPLE.replace(",\"inactive_copies\":0", ""),
                "inactive_copies",
            ),
            (SAMPLE.replace(",\"go_runtimes\":1", ""), "go_runtimes"),
            (SAMPLE.replace("[\"SIGPWR\"]", "[30]"), "suspend signal"),
            (SAMPLE.replace(",\"exe\":\"/usr/local/bin/bun\"", ""), "exe"),
            (SAMPLE[..SAMPLE.len() - 1].to_string(), "not JSON"),
        ] {
            assert_ne!(bad, SAMPLE, "mutation for {why} did not apply");
            let err = std::panic::catch_unwind(|| parse(&bad)).expect_err(why);
            let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
            assert!(msg.contains(why), "{why}: {msg}");
        }
        // A module name matching twice is ambiguous, not the first one.
        let twice = SAMPLE.replace("/app/plain.node", "/other/addon.node");
        let r = parse(&twice);
        assert!(std::panic::catch_unwind(|| module(&r, "addon.node").clone()).is_err());
    }
}
