//! The README's curl walkthrough, run exactly as written against a fresh server on its first
//! run, as a newcomer starts it (no `MARQUEE_ADMIN_*`: the owner's password is in the data
//! directory). Only the two base URLs, the data directory and the scratch files are swapped for
//! this run's.

use std::process::Command;

use crate::helpers::{AppOptions, Backend, spawn_app_with};

/// The ```sh blocks between the walkthrough markers, joined.
fn walkthrough() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let start = readme
        .find("<!-- walkthrough:start -->")
        .expect("walkthrough start marker");
    let end = readme
        .find("<!-- walkthrough:end -->")
        .expect("walkthrough end marker");
    let mut script = String::new();
    let mut in_block = false;
    for line in readme[start..end].lines() {
        match (in_block, line.trim()) {
            (false, "```sh") => in_block = true,
            (true, "```") => in_block = false,
            (true, _) => {
                script.push_str(line);
                script.push('\n');
            }
            _ => {}
        }
    }
    assert!(script.contains("curl"), "the walkthrough has commands");
    script
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_walkthrough_works_as_written() {
    let app = spawn_app_with(AppOptions::new(Backend::Sqlite).first_run_defaults()).await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(app.data_dir().join("admin-password"))
            .expect("the first run wrote the owner's password")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "only its owner may read it: {mode:o}");
    }
    let scratch = tempfile::tempdir().expect("dir");
    let script = walkthrough()
        .replace("http://127.0.0.1:8080", &app.command_url)
        .replace("http://127.0.0.1:8081", &app.query_url)
        .replace(
            "/tmp/marquee-reservation.json",
            &scratch.path().join("r.json").display().to_string(),
        )
        .replace(
            "/tmp/marquee-paid.json",
            &scratch.path().join("p.json").display().to_string(),
        )
        .replace(
            "/tmp/marquee-scan.json",
            &scratch.path().join("s.json").display().to_string(),
        )
        .replace(
            "./data/admin-password",
            &app.data_dir().join("admin-password").display().to_string(),
        );
    assert!(
        !script.contains("/tmp/marquee-") && !script.contains("./data"),
        "every path of the walkthrough is swapped for this run's: {script}"
    );
    let output = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            // As a newcomer runs it: the first run's defaults, not the runner's settings.
            .env_remove("MARQUEE_ADMIN_EMAIL")
            .env_remove("MARQUEE_ADMIN_PASSWORD")
            .output()
            .expect("bash runs")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "walkthrough failed\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.starts_with("{\"code\":\"unauthorized\""),
        "a command without a token is refused: {stdout}"
    );
    assert!(stdout.contains("\"status\":\"published\""), "{stdout}");
    assert!(stdout.contains("\"user_id\":"), "Ada signs up: {stdout}");
    assert!(stdout.contains("\"status\":\"confirmed\""), "{stdout}");
    assert!(stdout.contains("\"code\":\"sold_out\""), "{stdout}");
    assert!(
        stdout.contains("\"quantity\":3,\"confirmed\":2,\"held\":0,\"offered\":0,\"available\":1"),
        "capacity after the reservation: {stdout}"
    );
    assert!(
        stdout.contains("\"title\":\"Rust Meetup\""),
        "listing: {stdout}"
    );
    assert!(
        stdout.contains("\"result\":\"ok\""),
        "the first scan lets the ticket in: {stdout}"
    );
    assert!(
        stdout.contains("\"code\":\"already_redeemed\""),
        "the second scan is refused: {stdout}"
    );
    assert!(
        stdout.contains("\"name\":\"Cy\"") && stdout.contains("\"checked_in_at\":\""),
        "the guest list shows Cy, checked in: {stdout}"
    );
    assert_eq!(
        stdout.matches("\"status\":\"confirmed\"").count(),
        3,
        "the free reservation, the payment and Cy on the guest list are confirmed: {stdout}"
    );
}
