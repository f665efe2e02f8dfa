//! `serve --demo` across restarts (an admin's changes survive, no new key
//! per start) and logs written to a file (no colour codes).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{echo_until_ready, free_port, start_demo};
use serde_json::{json, Value};

async fn admin_get(base: &str, token: &str, path: &str) -> Value {
    let resp = reqwest::Client::new()
        .get(format!("{base}/admin/v1{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "GET {path}");
    resp.json().await.unwrap()
}

async fn wait_ready(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(r) = reqwest::get(format!("{base}/readyz")).await {
            if r.status() == 200 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "warden never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_demo_restart_keeps_admin_changes_and_mints_no_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let w = start_demo(&dir, &[]);
    let token = w.admin_token.clone().expect("first-start admin token");
    let key = w.demo_key.clone().expect("demo key printed on first start");
    echo_until_ready(&reqwest::Client::new(), &w.base, &key).await;

    // An admin switches the demo grant off.
    let off = reqwest::Client::new()
        .patch(format!("{}/admin/v1/orgs/demo/grants/demo", w.base))
        .bearer_auth(&token)
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), 200);
    let keys_before = admin_get(&w.base, &token, "/orgs/demo/keys").await["items"]
        .as_array()
        .unwrap()
        .len();
    drop(w);

    let w = start_demo(&dir, &[]);
    wait_ready(&w.base).await;
    assert_eq!(
        w.demo_key, None,
        "a new demo key was minted:\n{}",
        w.printed
    );
    assert!(
        w.printed.contains("created on the first --demo start"),
        "{}",
        w.printed
    );
    let grant = admin_get(&w.base, &token, "/orgs/demo/grants/demo").await;
    assert_eq!(
        grant["enabled"], false,
        "the restart re-enabled the grant: {grant}"
    );
    let keys_after = admin_get(&w.base, &token, "/orgs/demo/keys").await["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(keys_after, keys_before);

    // The first start's key still works once the admin switches the grant
    // back on: the restart pointed the demo server at the new upstream port.
    let on = reqwest::Client::new()
        .patch(format!("{}/admin/v1/orgs/demo/grants/demo", w.base))
        .bearer_auth(&token)
        .json(&json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(on.status(), 200);
    echo_until_ready(&reqwest::Client::new(), &w.base, &key).await;
}

#[tokio::test]
async fn logs_written_to_a_file_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("warden.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--database-url")
        .arg(format!("sqlite://{}/warden.db", dir.path().display()))
        .env("WARDEN_ADMIN_TOKEN", "a-configured-admin-token")
        .env_remove("WARDEN_SECRET_KEY")
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    wait_ready(&format!("http://127.0.0.1:{port}")).await;
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(text.contains("warden listening"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "ANSI escape codes in the log file:\n{text}"
    );
}
