//! Programs that have nothing to do with Go run identically under the shim:
//! same stdout, same exit code, nothing on stderr.

mod common;
use common::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn same(case: &str, program: PathBuf, args: &[&str]) {
    let run_one = |shim: bool| {
        let mut c: Command = command(&program, shim);
        c.args(args);
        run(c, Duration::from_secs(30))
    };
    let plain = run_one(false);
    let shimmed = run_one(true);
    plain.expect_success(&format!("{case} without shim"));
    shimmed.expect_success(&format!("{case} with shim"));
    assert_eq!(plain.stdout(), shimmed.stdout(), "{case}: stdout differs");
    assert_eq!(shimmed.stderr(), "", "{case}: stderr under the shim");
    assert!(!plain.stdout().is_empty(), "{case}: produced no output");
}

const SH: &str = r#"trap 'echo usr2' USR2; kill -USR2 $$; for i in 1 2 3; do echo $i; done | sort -r; ( exit 3 ); echo "sub=$?""#;

#[test]
fn shell() {
    same("bash", "/bin/bash".into(), &["-c", SH]);
    same("sh", "/bin/sh".into(), &["-c", SH]);
}

#[test]
fn python_with_threads_and_signals() {
    let py = r#"
import signal, threading, os
hits = []
signal.signal(signal.SIGUSR1, lambda s, f: hits.append(s))
os.kill(os.getpid(), signal.SIGUSR1)
out = []
ts = [threading.Thread(target=lambda i=i: out.append(i * i)) for i in range(20)]
[t.start() for t in ts]; [t.join() for t in ts]
print(sorted(out), hits, signal.getsignal(signal.SIGUSR1) is not None)
"#;
    same("python3", "/usr/bin/env".into(), &["python3", "-c", py]);
}

#[test]
fn node() {
    let js = "process.on('SIGUSR2', () => { console.log('usr2'); }); \
              process.kill(process.pid, 'SIGUSR2'); \
              setTimeout(() => console.log([1,2,3].map(x => x * 2).join()), 20);";
    same("node", common::node(), &["-e", js]);
}

#[test]
fn bun_all_versions() {
    let js = "const w = new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array([0,97,115,109,1,0,0,0]))); \
              setTimeout(() => console.log('bun', typeof w, [1,2,3].reduce((a, b) => a + b)), 20);";
    let mut versions: Vec<_> = deps().buns.keys().cloned().collect();
    versions.sort();
    for v in versions {
        same(&format!("bun {v}"), bun(&v), &["-e", js]);
    }
}
