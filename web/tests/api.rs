//! The JSON API and page handlers against the fake backend, as a script or the page uses them.
// Helpers outside #[test] fns unwrap too: a failed setup should fail the test loudly.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::PathBuf;
use std::time::Instant;

use mailbag_web::app::{BULK_MAX, COOKIE};
use mailbag_web::fake::{FakeBackend, HOSTILE_SUBJECT, HTML_MAIL_ID};
use mailbag_web::http::{Method, Request, Response};
use mailbag_web::{App, WebConfig};
use serde_json::{Value, json};

// `openssl passwd -6 -salt testsalt 'correct horse'`
const ROOT_HASH: &str = "$6$testsalt$cbbwgYyM1LY/2OzxhMS6.YhN4y1/0YkbEVVA20ZiZcSbQjmaejFZKCu7McxdocQYpOVpfUreIWntIDrRnWyt6/";
const PASSWORD: &str = "correct horse";

struct Fixture {
    app: App,
    dir: PathBuf,
    config: PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn fixture(name: &str, messages: usize, tweak: impl FnOnce(&mut WebConfig)) -> Fixture {
    let dir = std::env::temp_dir().join(format!("mailbag-web-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let shadow = dir.join("shadow");
    fs::write(
        &shadow,
        format!("daemon:*:19000:0:99999:7:::\nroot:{ROOT_HASH}:19000:0:99999:7:::\n"),
    )
    .unwrap();
    let config = dir.join("mailbag.toml");
    let backend = FakeBackend::demo(&config, messages).unwrap();
    let mut cfg = WebConfig {
        shadow_path: shadow,
        ..WebConfig::default()
    };
    tweak(&mut cfg);
    Fixture {
        app: App::new(Box::new(backend), cfg),
        dir,
        config,
    }
}

fn body(r: &Response) -> Value {
    serde_json::from_str(&r.text()).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.text()))
}

fn post_json(path: &str, v: &Value) -> Request {
    let mut r = Request::new(Method::Post, path);
    r.content_type = Some("application/json".into());
    r.body = v.to_string().into_bytes();
    r
}

/// A logged-in session: the cookie and CSRF token.
struct Login {
    cookie: String,
    csrf: String,
}

impl Login {
    fn get(&self, app: &App, path: &str) -> Response {
        let mut r = Request::new(Method::Get, path);
        r.cookie = Some(self.cookie.clone());
        app.handle(&r)
    }

    fn post(&self, app: &App, path: &str, v: &Value) -> Response {
        let mut r = post_json(path, v);
        r.cookie = Some(self.cookie.clone());
        r.csrf = Some(self.csrf.clone());
        app.handle(&r)
    }
}

fn login(app: &App) -> Login {
    let r = app.handle(&post_json(
        "/api/login",
        &json!({ "username": "root", "password": PASSWORD }),
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    let set = r.header("Set-Cookie").unwrap().to_owned();
    let cookie = set.split(';').next().unwrap().to_owned();
    Login {
        cookie,
        csrf: body(&r)["csrf"].as_str().unwrap().to_owned(),
    }
}

#[test]
fn login_sets_a_strict_httponly_cookie_and_rejects_wrong_passwords() {
    let f = fixture("login", 0, |_| {});
    let wrong = f.app.handle(&post_json(
        "/api/login",
        &json!({ "username": "root", "password": "nope" }),
    ));
    assert_eq!(wrong.status, 403);
    assert!(wrong.header("Set-Cookie").is_none());
    let other_user = f.app.handle(&post_json(
        "/api/login",
        &json!({ "username": "daemon", "password": "" }),
    ));
    assert_eq!(other_user.status, 403);

    let ok = f.app.handle(&post_json(
        "/api/login",
        &json!({ "username": "root", "password": PASSWORD }),
    ));
    assert_eq!(ok.status, 200);
    let cookie = ok.header("Set-Cookie").unwrap();
    assert!(cookie.starts_with(&format!("{COOKIE}=")), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP must not mark Secure: {cookie}"
    );

    let tls = fixture("login-tls", 0, |c| c.secure_cookie = true);
    let ok = tls
        .app
        .handle(&post_json("/api/login", &json!({ "password": PASSWORD })));
    assert!(ok.header("Set-Cookie").unwrap().ends_with("; Secure"));

    // A form post (what a cross-site attacker can send without a preflight) is refused.
    let mut form = Request::new(Method::Post, "/api/login");
    form.content_type = Some("application/x-www-form-urlencoded".into());
    form.body = b"password=x".to_vec();
    assert_eq!(f.app.handle(&form).status, 415);
}

#[test]
fn failed_logins_are_rate_limited_per_client() {
    let f = fixture("ratelimit", 0, |_| {});
    for _ in 0..5 {
        assert_eq!(
            f.app
                .handle(&post_json("/api/login", &json!({ "password": "guess" })))
                .status,
            403
        );
    }
    let right = f
        .app
        .handle(&post_json("/api/login", &json!({ "password": PASSWORD })));
    assert_eq!(
        right.status, 429,
        "even the right password waits out the window"
    );
    let mut elsewhere = post_json("/api/login", &json!({ "password": PASSWORD }));
    elsewhere.client = "192.168.1.50".parse().unwrap();
    assert_eq!(f.app.handle(&elsewhere).status, 200);
}

#[test]
fn api_needs_a_session_or_token_and_posts_need_csrf() {
    let f = fixture("csrf", 5, |c| {
        c.api_token = Some("monitor-token-123".into())
    });
    assert_eq!(
        f.app
            .handle(&Request::new(Method::Get, "/api/status"))
            .status,
        401
    );
    assert_eq!(
        f.app.handle(&Request::new(Method::Get, "/")).status,
        200,
        "the page itself is public"
    );

    let mut tok = Request::new(Method::Get, "/api/status");
    tok.authorization = Some("Bearer monitor-token-123".into());
    let r = f.app.handle(&tok);
    assert_eq!(r.status, 200);
    assert_eq!(body(&r)["queue_depth"], 9);
    tok.authorization = Some("Bearer monitor-token-124".into());
    assert_eq!(f.app.handle(&tok).status, 401);

    // The token is read-only.
    let mut tok_post = post_json("/api/queue/flush", &json!({}));
    tok_post.authorization = Some("Bearer monitor-token-123".into());
    assert_eq!(f.app.handle(&tok_post).status, 401);

    let s = login(&f.app);
    let mut no_csrf = post_json("/api/messages/m000001/delete", &json!({}));
    no_csrf.cookie = Some(s.cookie.clone());
    assert_eq!(f.app.handle(&no_csrf).status, 403);
    no_csrf.csrf = Some("0".repeat(64));
    assert_eq!(f.app.handle(&no_csrf).status, 403);
    assert_eq!(
        s.get(&f.app, "/api/messages/m000001").status,
        200,
        "still there"
    );
    assert_eq!(
        s.post(&f.app, "/api/messages/m000001/delete", &json!({}))
            .status,
        200
    );
    assert_eq!(s.get(&f.app, "/api/messages/m000001").status, 404);

    assert_eq!(s.post(&f.app, "/api/logout", &json!({})).status, 200);
    assert_eq!(s.get(&f.app, "/api/status").status, 401, "session ended");
}

#[test]
fn queue_of_ten_thousand_pages_sorts_and_filters_fast() {
    let f = fixture("queue", 10_000, |_| {});
    let s = login(&f.app);
    let t = Instant::now();
    let r = s.get(&f.app, "/api/queue?offset=9990&limit=50&sort=size&dir=desc");
    let first = t.elapsed();
    let page = body(&r);
    assert_eq!(page["total"], 10_004);
    assert_eq!(page["rows"].as_array().unwrap().len(), 14);
    let sizes: Vec<u64> = page["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["size"].as_u64().unwrap())
        .collect();
    assert!(
        sizes.windows(2).all(|w| w[0] >= w[1]),
        "descending: {sizes:?}"
    );

    let t = Instant::now();
    for _ in 0..20 {
        let r = s.get(
            &f.app,
            "/api/queue?limit=50&domain=EXAMPLE.ORG&q=report%20%2312",
        );
        assert_eq!(r.status, 200);
    }
    let per_filtered = t.elapsed() / 20;
    let page = body(&s.get(
        &f.app,
        "/api/queue?limit=500&domain=example.org&q=report%20%2312",
    ));
    let rows = page["rows"].as_array().unwrap();
    assert!(page["total"].as_u64().unwrap() > 0);
    for row in rows {
        assert!(
            row["recipients"][0]
                .as_str()
                .unwrap()
                .ends_with("@example.org")
        );
        assert!(row["subject"].as_str().unwrap().contains("Report #12"));
    }
    eprintln!("10k queue: sorted page {first:?}, filtered page {per_filtered:?}");
    assert!(
        first.as_millis() < 500 && per_filtered.as_millis() < 500,
        "{first:?} {per_filtered:?}"
    );

    assert_eq!(s.get(&f.app, "/api/queue?sort=evil").status, 400);
    assert_eq!(
        body(&s.get(&f.app, "/api/queue?limit=999999"))["rows"]
            .as_array()
            .unwrap()
            .len(),
        500
    );
}

#[test]
fn hostile_mail_values_never_leave_as_markup() {
    let f = fixture("hostile", 0, |_| {});
    let s = login(&f.app);
    for path in [
        "/api/queue?limit=500",
        "/api/messages/m-hostile-0001",
        &format!("/api/messages/{HTML_MAIL_ID}"),
        "/api/log",
    ] {
        let r = s.get(&f.app, path);
        assert_eq!(r.status, 200, "{path}");
        let raw = r.text();
        assert!(
            !raw.contains('<') && !raw.contains('>'),
            "{path} carries raw markup: {raw}"
        );
        assert_eq!(r.header("Content-Type"), Some("application/json"));
    }
    let q = body(&s.get(&f.app, "/api/queue?q=invoice"));
    assert_eq!(
        q["rows"][0]["subject"], HOSTILE_SUBJECT,
        "decodes back to the exact text"
    );

    let m = body(&s.get(&f.app, &format!("/api/messages/{HTML_MAIL_ID}")));
    assert_eq!(m["content"]["preview_type"], "text/html");
    assert_eq!(
        m["message"]["subject"], "Your statement €",
        "encoded words decoded for display"
    );
    assert!(
        m["content"]["preview"]
            .as_str()
            .unwrap()
            .contains("<script>window.__pwned=3</script>")
    );
    let names: Vec<&str> = m["content"]["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["statement.pdf", "<img src=x onerror=alert(1)>.png"]);
    assert_eq!(m["content"]["attachments"][0]["size"], 192);

    let junk = body(&s.get(&f.app, "/api/messages/m-junk-0001"));
    assert!(
        junk["message"]["subject"]
            .as_str()
            .unwrap()
            .starts_with('\u{0}')
    );

    // Ids outside [A-Za-z0-9._-] never reach the backend.
    for bad in [
        "/api/messages/..",
        "/api/messages/%3Cscript%3E",
        &format!("/api/messages/{}", "a".repeat(65)),
    ] {
        assert_eq!(s.get(&f.app, bad).status, 404, "{bad}");
    }
}

#[test]
fn eml_download_is_the_raw_message_as_an_attachment() {
    let f = fixture("eml", 0, |_| {});
    let s = login(&f.app);
    let mut r = s.get(&f.app, "/api/messages/m-hostile-0001/eml");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("message/rfc822"));
    assert_eq!(
        r.header("Content-Disposition"),
        Some("attachment; filename=\"m-hostile-0001.eml\"")
    );
    let mailbag_web::http::Body::Stream(src) = &mut r.body else {
        panic!("not streamed")
    };
    let mut text = String::new();
    std::io::Read::read_to_string(src, &mut text).unwrap();
    assert!(text.contains(&format!("Subject: {HOSTILE_SUBJECT}\r\n")));
}

#[test]
fn actions_retry_delete_bounce_flush_and_bulk() {
    let f = fixture("actions", 30, |_| {});
    let s = login(&f.app);
    let before = body(&s.get(&f.app, "/api/messages/m000003"))["message"]["attempts"]
        .as_u64()
        .unwrap();
    assert_eq!(
        body(&s.post(&f.app, "/api/messages/m000003/retry", &json!({})))["done"],
        1
    );
    let after = body(&s.get(&f.app, "/api/messages/m000003"))["message"]["attempts"]
        .as_u64()
        .unwrap();
    assert_eq!(after, before + 1);

    let r = body(&s.post(
        &f.app,
        "/api/queue/action",
        &json!({ "action": "bounce", "ids": ["m000004", "m000005", "gone"] }),
    ));
    assert_eq!(r["done"], 2);
    assert_eq!(r["missing"], json!(["gone"]));
    let log = body(&s.get(&f.app, "/api/log?limit=5"));
    assert_eq!(log["events"][0]["kind"], "bounced");

    let too_many: Vec<String> = (0..=BULK_MAX).map(|i| format!("x{i}")).collect();
    assert_eq!(
        s.post(
            &f.app,
            "/api/queue/action",
            &json!({ "action": "delete", "ids": too_many })
        )
        .status,
        413
    );
    assert_eq!(
        s.post(
            &f.app,
            "/api/queue/action",
            &json!({ "action": "explode", "ids": [] })
        )
        .status,
        400
    );
    assert_eq!(
        s.post(
            &f.app,
            "/api/queue/action",
            &json!({ "action": "delete", "ids": ["<bad>"] })
        )
        .status,
        400
    );

    let d = body(&s.post(
        &f.app,
        "/api/queue/flush",
        &json!({ "domain": "example.org" }),
    ));
    let expected = body(&s.get(&f.app, "/api/queue?domain=example.org&limit=1"))["total"].clone();
    assert_eq!(d["flushed"], expected);
    let all = body(&s.post(&f.app, "/api/queue/flush", &json!({})));
    assert_eq!(
        all["flushed"],
        body(&s.get(&f.app, "/api/status"))["queue_depth"]
    );
}

#[test]
fn settings_validate_inline_and_persist_to_the_config_file() {
    let f = fixture("settings", 0, |_| {});
    let s = login(&f.app);
    let fields = body(&s.get(&f.app, "/api/settings"));
    let lifetime = fields["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["key"] == "relay.lifetime-days")
        .unwrap();
    assert_eq!(lifetime["value"], "7");
    let before = fs::read_to_string(&f.config).unwrap();

    let bad = s.post(
        &f.app,
        "/api/settings",
        &json!({ "values": { "relay.lifetime-days": "45", "relay.next-hops": "mail.lan" } }),
    );
    assert_eq!(bad.status, 422);
    let errors = body(&bad)["errors"].clone();
    assert_eq!(errors[0]["field"], "relay.next-hops");
    assert_eq!(
        errors[1],
        json!({ "field": "relay.lifetime-days", "message": "must be a whole number from 1 to 30" })
    );
    assert_eq!(
        fs::read_to_string(&f.config).unwrap(),
        before,
        "nothing written on error"
    );

    let check = body(&s.post(
        &f.app,
        "/api/settings/validate",
        &json!({ "values": { "relay.lifetime-days": "0" } }),
    ));
    assert_eq!(check["errors"][0]["field"], "relay.lifetime-days");

    let ok = s.post(
        &f.app,
        "/api/settings",
        &json!({ "values": { "relay.lifetime-days": "14", "firewall.mode": "off" } }),
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(body(&ok)["restart_needed"], json!([]));
    let text = fs::read_to_string(&f.config).unwrap();
    assert!(
        text.contains("lifetime-days = 14") && text.contains("mode = \"off\""),
        "{text}"
    );
    assert_eq!(body(&s.get(&f.app, "/api/status"))["firewall_mode"], "off");
    assert!(
        body(&s.get(&f.app, "/api/firewall"))["rules"]
            .as_str()
            .unwrap()
            .contains("no rules")
    );
}

#[test]
fn firewall_preview_and_apply() {
    let f = fixture("firewall", 0, |_| {});
    let s = login(&f.app);
    let p = body(&s.get(&f.app, "/api/firewall"));
    assert_eq!(p["applied"], false);
    assert!(p["rules"].as_str().unwrap().contains("203.0.113.0/28"));
    assert_eq!(
        s.post(&f.app, "/api/firewall/apply", &json!({})).status,
        200
    );
    assert_eq!(body(&s.get(&f.app, "/api/firewall"))["applied"], true);
}

#[test]
fn setup_check_lists_each_line_with_its_fix_and_follows_the_firewall() {
    let f = fixture("setup", 0, |_| {});
    let s = login(&f.app);
    let r = s.post(&f.app, "/api/check-setup", &json!({}));
    assert_eq!(r.status, 200);
    let v = body(&r);
    let checks = v["checks"].as_array().unwrap();
    let firewall = checks.iter().find(|c| c["id"] == "firewall").unwrap();
    assert_eq!(firewall["status"], "fail");
    assert!(
        firewall["fix"]
            .as_str()
            .unwrap()
            .contains("mailbag firewall apply")
    );
    assert!(
        checks
            .iter()
            .all(|c| c["status"] == "pass" || c["fix"].is_string())
    );
    assert_eq!(v["ok"], false);
    assert_eq!(
        v["failed"].as_u64().unwrap() as usize,
        checks.iter().filter(|c| c["status"] == "fail").count()
    );
    s.post(&f.app, "/api/firewall/apply", &json!({}));
    let v = body(&s.post(&f.app, "/api/check-setup", &json!({})));
    let firewall = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "firewall")
        .cloned();
    assert_eq!(firewall.unwrap()["status"], "pass");
    // A POST with side effects (the silos get ETRN): no CSRF, no check; GET is no route.
    let mut bare = post_json("/api/check-setup", &json!({}));
    bare.cookie = Some(s.cookie.clone());
    assert_eq!(f.app.handle(&bare).status, 403);
    assert_eq!(s.get(&f.app, "/api/check-setup").status, 404);
}

#[test]
fn metrics_need_their_own_token_and_a_session_is_not_enough() {
    let none = fixture("metrics-off", 0, |_| {});
    let r = none.app.handle(&Request::new(Method::Get, "/metrics"));
    assert_eq!(r.status, 404, "no token configured: no /metrics");
    let f = fixture("metrics", 0, |c| {
        c.metrics_token = Some("scrape-token-0123456789".into())
    });
    let s = login(&f.app);
    assert_eq!(
        s.get(&f.app, "/metrics").status,
        401,
        "a page session is no scraper"
    );
    let mut r = Request::new(Method::Get, "/metrics");
    r.authorization = Some("Bearer scrape-token-0123456780".into());
    assert_eq!(f.app.handle(&r).status, 403);
    r.authorization = Some("Bearer scrape-token-0123456789".into());
    // The fake backend has no metrics: the token got through to it.
    assert_eq!(f.app.handle(&r).status, 503);
    assert_eq!(
        body(&s.get(&f.app, "/api/routers")),
        json!({ "routers": [] })
    );
}
