//! `sapha hub --check-config FILE`: validates the config as a start would
//! (file, then `SAPHA_HUB__SECTION__KEY`, then flags) and exits without
//! starting: 0 with a one-line summary, non-zero with the offending key. And
//! `sapha hub --help` names the environment variable of each flag.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `sapha hub ARGS` with only `env` of the `SAPHA_*` variables set, and
/// waits at most 60 s for it to exit (a started hub would not).
fn sapha_hub(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(sapha_tests::sapha_bin());
    cmd.arg("hub").args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("SAPHA_") {
            cmd.env_remove(key);
        }
    }
    cmd.envs(env.iter().copied())
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("sapha runs");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("waiting for sapha").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("sapha hub {args:?} did not exit: it started instead of checking");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("its output")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn example() -> String {
    sapha_tests::repo_root()
        .join("hub/hub.example.toml")
        .display()
        .to_string()
}

#[test]
fn a_valid_config_is_summarised_in_one_line_and_exits_0() {
    let file = example();
    let out = sapha_hub(&["--check-config", &file], &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with(&format!("{file}: valid;")), "{stdout}");
    assert!(stdout.contains("at most 20000 connections"), "{stdout}");
}

#[test]
fn the_environment_overrides_the_file_and_flags_override_both() {
    let file = example();
    let env = [("SAPHA_HUB__LIMITS__MAX_CONNECTIONS", "7")];
    let out = sapha_hub(&["--check-config", &file], &env);
    assert!(text(&out.stdout).contains("at most 7 connections"));
    let out = sapha_hub(
        &["--check-config", &file, "--set", "limits.max_connections=9"],
        &env,
    );
    assert!(text(&out.stdout).contains("at most 9 connections"));
    let out = sapha_hub(
        &["--check-config", &file, "--stream", "OTHER"],
        &[("SAPHA_HUB__NATS__STREAM", "ENV")],
    );
    assert!(text(&out.stdout).contains("stream OTHER"), "{out:?}");
    // The file checked is FILE, whatever SAPHA_HUB_CONFIG (a service's
    // environment, say) points at.
    let out = sapha_hub(
        &["--check-config", &file],
        &[("SAPHA_HUB_CONFIG", "/nonexistent/hub.toml")],
    );
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn an_invalid_config_fails_and_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[limits]\nqueue_frames = \"many\"\n", "limits.queue_frames"),
        ("[limits]\nqueue_framez = 5\n", "queue_framez"),
        ("[auth]\nmode = \"required\"\n", "auth.mode"),
        ("listen = \n", "not valid toml"),
    ];
    for (i, (toml, key)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("bad-{i}.toml"));
        std::fs::write(&path, toml).unwrap();
        let out = sapha_hub(&["--check-config", path.to_str().unwrap()], &[]);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{toml:?} passed");
        assert!(out.stdout.is_empty(), "{toml:?}: {}", text(&out.stdout));
        assert!(stderr.contains("is not valid"), "{toml:?}: {stderr}");
        assert!(stderr.contains(key), "{toml:?} should name {key}: {stderr}");
    }
    // A bad value from the environment is named by its key too.
    let out = sapha_hub(
        &["--check-config", &example()],
        &[("SAPHA_HUB__LIMITS__MAX_CONNECTIONS", "lots")],
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("limits.max_connections"));
}

#[test]
fn help_names_the_environment_variable_of_each_flag() {
    let out = sapha_hub(&["--help"], &[]);
    let help = text(&out.stdout);
    assert!(out.status.success());
    for env in [
        "[env: SAPHA_HUB_CONFIG=]",
        "[env: SAPHA_HUB__LISTEN=]",
        "[env: SAPHA_HUB__NATS__URL=]",
        "[env: SAPHA_HUB__NATS__STREAM=]",
        "SAPHA_HUB__<SECTION>__<KEY>",
        "--check-config <FILE>",
    ] {
        assert!(help.contains(env), "no {env} in:\n{help}");
    }
}
