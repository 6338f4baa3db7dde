//! Routing and handlers: the page, its assets and the JSON API under `/api/`.
//!
//! Access levels: the page and its assets are public (they hold no data); `POST /api/login`
//! is public but rate-limited; every other `/api/` GET needs a session cookie or the API
//! token (`Authorization: Bearer …`, read-only); every other POST needs a session cookie and
//! its CSRF token in `X-CSRF-Token`. JSON bodies must be sent as `application/json`, which a
//! cross-site form cannot do without a CORS preflight this server never grants.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;

use crate::assets;
use crate::auth::{self, LoginError, RateLimit, Session, Sessions};
use crate::backend::{
    Backend, BackendError, MessageId, QUEUE_PAGE_MAX, QueueAction, QueueQuery, SaveError,
    SettingsValues, SortKey,
};
use crate::http::{Body, Method, Request, Response};
use crate::mime;

/// The session cookie's name.
pub const COOKIE: &str = "mailbag_sid";
/// Default queue page size.
pub const QUEUE_PAGE_DEFAULT: usize = 50;
/// Most ids in one bulk action.
pub const BULK_MAX: usize = 1000;
/// Most log events returned.
pub const LOG_MAX: usize = 500;
/// Longest filter text accepted.
pub const FILTER_MAX: usize = 256;

/// How the web server is set up.
#[derive(Clone, Debug)]
pub struct WebConfig {
    /// Listen address: the LAN address by default, never the WAN unless configured so.
    pub listen: SocketAddr,
    /// Shadow-format password file (`/etc/shadow` on OpenWrt).
    pub shadow_path: PathBuf,
    /// Mark the session cookie `Secure` (the page is served over TLS).
    pub secure_cookie: bool,
    /// Read-only API token for scripts and monitoring (`Authorization: Bearer <token>`).
    pub api_token: Option<String>,
    /// Bearer token for `/metrics` (Prometheus); `None` serves no `/metrics`.
    pub metrics_token: Option<String>,
    /// tiny-http worker threads.
    pub workers: usize,
    /// A client that stops reading a response for this long is dropped, freeing its worker.
    pub write_timeout: Duration,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            // OpenWrt's default LAN address; port 80 belongs to LuCI's uhttpd.
            listen: SocketAddr::from(([192, 168, 1, 1], 8025)),
            shadow_path: PathBuf::from("/etc/shadow"),
            secure_cookie: false,
            api_token: None,
            metrics_token: None,
            workers: 4,
            write_timeout: Duration::from_secs(10),
        }
    }
}

/// Who is asking.
enum Caller {
    Session(Session),
    Token,
    Nobody,
}

/// The application: the backend, sessions and rate limits. Shared by all workers.
pub struct App {
    backend: Box<dyn Backend + Send + Sync>,
    config: WebConfig,
    sessions: Mutex<Sessions>,
    limits: Mutex<RateLimit>,
    /// Held while a setup check runs.
    checking: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere cannot leave these tables inconsistent (every update is one step).
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn backend_error(e: &BackendError) -> Response {
    let status = match e {
        BackendError::NotFound => 404,
        BackendError::Unavailable(_) => 503,
        BackendError::Failed(_) => 500,
    };
    Response::error(status, &e.to_string())
}

#[derive(Deserialize)]
struct LoginBody {
    #[serde(default)]
    username: String,
    password: String,
}

#[derive(Deserialize)]
struct BulkBody {
    action: QueueAction,
    ids: Vec<MessageId>,
}

#[derive(Deserialize, Default)]
struct FlushBody {
    #[serde(default)]
    domain: Option<String>,
}

#[derive(Deserialize)]
struct SettingsBody {
    values: SettingsValues,
}

impl App {
    /// An app over `backend`.
    pub fn new(backend: Box<dyn Backend + Send + Sync>, config: WebConfig) -> Self {
        Self {
            backend,
            config,
            sessions: Mutex::default(),
            limits: Mutex::default(),
            checking: Mutex::default(),
        }
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &WebConfig {
        &self.config
    }

    /// Answers one request.
    pub fn handle(&self, req: &Request) -> Response {
        let segs: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
        match (req.method, segs.as_slice()) {
            (Method::Get, [""]) => asset("index.html"),
            (Method::Get, ["static", name]) => asset(name),
            (Method::Get, ["metrics"]) => self.metrics(req),
            (Method::Post, ["api", "login"]) => self.login(req),
            (Method::Get | Method::Post, ["api", ..]) => self.api(req, &segs[1..]),
            (Method::Other, _) => Response::error(405, "method not allowed"),
            _ => Response::error(404, "not found"),
        }
    }

    /// `/metrics` for Prometheus: only with the configured bearer token (a scraper has no
    /// session); 404 when none is configured, 401 without it, 403 with a wrong one.
    fn metrics(&self, req: &Request) -> Response {
        let Some(want) = &self.config.metrics_token else {
            return Response::error(404, "not found");
        };
        let Some(got) = req
            .authorization
            .as_deref()
            .and_then(|a| a.strip_prefix("Bearer "))
        else {
            return Response::error(
                401,
                "metrics need Authorization: Bearer <monitor.metrics-token>",
            )
            .with_header(
                "WWW-Authenticate",
                "Bearer realm=\"mailbag metrics\"".into(),
            );
        };
        if !auth::constant_time_eq(want, got.trim()) {
            return Response::error(403, "wrong metrics token");
        }
        match self.backend.metrics() {
            Ok(text) => Response {
                status: 200,
                headers: vec![
                    (
                        "Content-Type",
                        "text/plain; version=0.0.4; charset=utf-8".into(),
                    ),
                    ("Cache-Control", "no-store".into()),
                ],
                body: Body::Bytes(text.into_bytes()),
            },
            Err(e) => backend_error(&e),
        }
    }

    fn caller(&self, req: &Request) -> Caller {
        if let Some(sid) = req.cookie_value(COOKIE) {
            if let Some(s) = lock(&self.sessions).find(sid, Instant::now()) {
                return Caller::Session(s);
            }
        }
        if let (Some(want), Some(got)) = (&self.config.api_token, &req.authorization) {
            if let Some(t) = got.strip_prefix("Bearer ") {
                if auth::constant_time_eq(want, t.trim()) {
                    return Caller::Token;
                }
            }
        }
        Caller::Nobody
    }

    fn api(&self, req: &Request, segs: &[&str]) -> Response {
        let caller = self.caller(req);
        if req.method == Method::Post {
            let Caller::Session(session) = &caller else {
                return Response::error(401, "login required");
            };
            let csrf_ok = req
                .csrf
                .as_deref()
                .is_some_and(|t| auth::constant_time_eq(&session.csrf, t));
            if !csrf_ok {
                return Response::error(403, "missing or wrong CSRF token");
            }
            if !req.body.is_empty() && !is_json(req) {
                return Response::error(415, "send JSON (Content-Type: application/json)");
            }
            return self.post(req, segs, session);
        }
        match (&caller, segs) {
            (Caller::Nobody, _) => Response::error(401, "login required"),
            (Caller::Session(s), ["session"]) => {
                Response::json(200, &json!({ "user": auth::USER, "csrf": s.csrf }))
            }
            (Caller::Token, ["session"]) => {
                Response::json(200, &json!({ "user": "token", "csrf": null }))
            }
            (_, ["status"]) => self
                .backend
                .status()
                .map_or_else(|e| backend_error(&e), |s| Response::json(200, &s)),
            (_, ["queue"]) => self.queue(req),
            (_, ["messages", id]) => self.message(id),
            (_, ["messages", id, "eml"]) => self.eml(id),
            (_, ["settings"]) => self.backend.settings().map_or_else(
                |e| backend_error(&e),
                |f| Response::json(200, &json!({ "fields": f })),
            ),
            (_, ["routers"]) => self.backend.routers().map_or_else(
                |e| backend_error(&e),
                |r| Response::json(200, &json!({ "routers": r })),
            ),
            (_, ["firewall"]) => self
                .backend
                .firewall_preview()
                .map_or_else(|e| backend_error(&e), |p| Response::json(200, &p)),
            (_, ["log"]) => {
                let limit = req
                    .query_param("limit")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(100usize)
                    .clamp(1, LOG_MAX);
                self.backend.log(limit).map_or_else(
                    |e| backend_error(&e),
                    |ev| Response::json(200, &json!({ "events": ev })),
                )
            }
            _ => Response::error(404, "not found"),
        }
    }

    fn post(&self, req: &Request, segs: &[&str], session: &Session) -> Response {
        match segs {
            ["logout"] => {
                lock(&self.sessions).remove(&session.id);
                Response::json(200, &json!({ "ok": true }))
                    .with_header("Set-Cookie", self.cookie("", 0))
            }
            ["queue", "action"] => match parse_json::<BulkBody>(req) {
                Ok(b) if b.ids.len() > BULK_MAX => {
                    Response::error(413, &format!("at most {BULK_MAX} messages at once"))
                }
                Ok(b) => self.act(b.action, &b.ids),
                Err(r) => r,
            },
            ["queue", "flush"] => {
                let body = if req.body.is_empty() {
                    Ok(FlushBody::default())
                } else {
                    parse_json::<FlushBody>(req)
                };
                match body {
                    Ok(b) => {
                        let domain = b.domain.as_deref().map(str::trim).filter(|d| !d.is_empty());
                        self.backend.flush(domain).map_or_else(
                            |e| backend_error(&e),
                            |n| Response::json(200, &json!({ "flushed": n })),
                        )
                    }
                    Err(r) => r,
                }
            }
            ["messages", id, verb] => {
                let action = match *verb {
                    "retry" => QueueAction::Retry,
                    "delete" => QueueAction::Delete,
                    "bounce" => QueueAction::Bounce,
                    _ => return Response::error(404, "not found"),
                };
                match MessageId::parse(id) {
                    Some(id) => self.act(action, &[id]),
                    None => Response::error(404, "no such message"),
                }
            }
            ["settings"] => match parse_json::<SettingsBody>(req) {
                Ok(b) => match self.backend.save_settings(&b.values) {
                    Ok(outcome) => Response::json(200, &outcome),
                    Err(SaveError::Invalid(errors)) => {
                        Response::json(422, &json!({ "errors": errors }))
                    }
                    Err(SaveError::Backend(e)) => backend_error(&e),
                },
                Err(r) => r,
            },
            ["settings", "validate"] => match parse_json::<SettingsBody>(req) {
                Ok(b) => Response::json(
                    200,
                    &json!({ "errors": self.backend.validate_settings(&b.values) }),
                ),
                Err(r) => r,
            },
            ["firewall", "apply"] => self.backend.firewall_apply().map_or_else(
                |e| backend_error(&e),
                |m| Response::json(200, &json!({ "message": m })),
            ),
            ["check-setup"] => {
                // One at a time: a check holds its worker for seconds (DNS, SMTP).
                let Ok(_running) = self.checking.try_lock() else {
                    return Response::error(409, "a setup check is already running");
                };
                self.backend
                    .check_setup()
                    .map_or_else(|e| backend_error(&e), |r| Response::json(200, &r))
            }
            _ => Response::error(404, "not found"),
        }
    }

    fn login(&self, req: &Request) -> Response {
        if !is_json(req) {
            return Response::error(415, "send JSON (Content-Type: application/json)");
        }
        let body = match parse_json::<LoginBody>(req) {
            Ok(b) => b,
            Err(r) => return r,
        };
        match self.check_login(req, &body) {
            Ok(()) => match lock(&self.sessions).create(Instant::now()) {
                Ok(s) => Response::json(200, &json!({ "user": auth::USER, "csrf": s.csrf }))
                    .with_header("Set-Cookie", self.cookie(&s.id, auth::SESSION_IDLE_SECS)),
                Err(_) => Response::error(500, "no randomness for a session token"),
            },
            Err(e @ LoginError::RateLimited) => Response::error(429, &e.to_string()),
            Err(e @ LoginError::BadCredentials) => Response::error(403, &e.to_string()),
            Err(e @ LoginError::ShadowUnreadable) => Response::error(500, &e.to_string()),
        }
    }

    fn check_login(&self, req: &Request, body: &LoginBody) -> Result<(), LoginError> {
        let now = Instant::now();
        if !lock(&self.limits).allowed(req.client, now) {
            return Err(LoginError::RateLimited);
        }
        let user = if body.username.is_empty() {
            auth::USER
        } else {
            body.username.as_str()
        };
        let ok = user == auth::USER
            && auth::check_password(&self.config.shadow_path, user, &body.password)
                .map_err(|_| LoginError::ShadowUnreadable)?;
        if ok {
            Ok(())
        } else {
            lock(&self.limits).failed(req.client, now);
            Err(LoginError::BadCredentials)
        }
    }

    fn cookie(&self, value: &str, max_age: u64) -> String {
        let secure = if self.config.secure_cookie {
            "; Secure"
        } else {
            ""
        };
        format!("{COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
    }

    fn queue(&self, req: &Request) -> Response {
        let num = |k: &str| req.query_param(k).and_then(|v| v.parse::<usize>().ok());
        let text = |k: &str| {
            req.query_param(k)
                .map(|v| v.trim().chars().take(FILTER_MAX).collect::<String>())
                .filter(|v| !v.is_empty())
        };
        let sort = match req.query_param("sort") {
            None => SortKey::default(),
            Some(s) => match SortKey::parse(&s) {
                Some(k) => k,
                None => return Response::error(400, "unknown sort column"),
            },
        };
        let query = QueueQuery {
            offset: num("offset").unwrap_or(0),
            limit: num("limit")
                .unwrap_or(QUEUE_PAGE_DEFAULT)
                .clamp(1, QUEUE_PAGE_MAX),
            sort,
            descending: req.query_param("dir").as_deref() == Some("desc"),
            domain: text("domain"),
            text: text("q"),
        };
        match self.backend.queue_page(&query) {
            Ok(mut page) => {
                for row in &mut page.rows {
                    row.subject = mime::decode_words(&row.subject);
                }
                Response::json(200, &page)
            }
            Err(e) => backend_error(&e),
        }
    }

    fn message(&self, id: &str) -> Response {
        let Some(id) = MessageId::parse(id) else {
            return Response::error(404, "no such message");
        };
        let info = match self.backend.message(&id) {
            Ok(mut i) => {
                i.row.subject = mime::decode_words(&i.row.subject);
                i
            }
            Err(e) => return backend_error(&e),
        };
        let parsed = match self.backend.message_source(&id) {
            Ok(src) => match mime::parse(src) {
                Ok(p) => p,
                Err(e) => return Response::error(500, &format!("reading the message failed: {e}")),
            },
            Err(e) => return backend_error(&e),
        };
        Response::json(200, &json!({ "message": info, "content": parsed }))
    }

    fn eml(&self, id: &str) -> Response {
        let Some(id) = MessageId::parse(id) else {
            return Response::error(404, "no such message");
        };
        match self.backend.message_source(&id) {
            Ok(src) => Response {
                status: 200,
                headers: vec![
                    ("Content-Type", "message/rfc822".into()),
                    // The id is [A-Za-z0-9._-] only, safe inside the quotes.
                    (
                        "Content-Disposition",
                        format!("attachment; filename=\"{id}.eml\""),
                    ),
                    ("Cache-Control", "no-store".into()),
                ],
                body: Body::Stream(src),
            },
            Err(e) => backend_error(&e),
        }
    }

    fn act(&self, action: QueueAction, ids: &[MessageId]) -> Response {
        self.backend
            .act(action, ids)
            .map_or_else(|e| backend_error(&e), |r| Response::json(200, &r))
    }
}

fn is_json(req: &Request) -> bool {
    req.content_type.as_deref().is_some_and(|c| {
        c.split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
    })
}

fn parse_json<T: for<'de> Deserialize<'de>>(req: &Request) -> Result<T, Response> {
    serde_json::from_slice(&req.body)
        .map_err(|e| Response::error(400, &format!("bad request body: {e}")))
}

fn asset(name: &str) -> Response {
    match assets::find(name) {
        Some(a) => Response {
            status: 200,
            headers: vec![
                ("Content-Type", a.content_type.into()),
                ("Cache-Control", "no-cache".into()),
            ],
            body: Body::Static(a.bytes),
        },
        None => Response::error(404, "not found"),
    }
}
