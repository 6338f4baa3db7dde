//! The admin page's backend against a real spool thread on a temporary image file: what the
//! page lists and shows must be what the spool holds, and what it changes must survive a
//! remount.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use mailbag_hal::{Clock, ManualClock};
use mailbag_web::Backend;
use mailbag_web::backend::{BackendError, MessageId, QueueAction, QueueQuery, SaveError, SortKey};

use super::web_backend::{DaemonBackend, Parts};
use crate::config::Config;
use crate::daemon::delivery::{self, DeliveryHandle};
use crate::daemon::events::EventLog;
use crate::daemon::spool::{self, SpoolHandle};
use crate::spool::open::open_for_daemon;
use crate::spool::{Envelope, Limits};

const NOW: u64 = 1_800_000_000;

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("mailbag-webreal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start(dir: &Path) -> (SpoolHandle, JoinHandle<()>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(NOW));
    let dev = open_for_daemon(&dir.join("spool.img"), 4 << 20, clock.as_ref()).unwrap();
    let limits = Limits {
        max_messages: 4096,
        max_bytes: 3 << 20,
        max_bytes_per_domain: 0,
    };
    let clock_dyn: Arc<dyn Clock> = clock.clone();
    let (h, t) = spool::start(dev, limits, clock_dyn).unwrap();
    (h, t, clock)
}

/// A runtime nobody drives: the actions only wait on the spool thread's channels, which
/// need no driver.
fn runtime() -> tokio::runtime::Handle {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    })
    .handle()
    .clone()
}

/// Delivery over `spool`, never started: the tests play its claims by hand.
fn delivery(spool: &SpoolHandle, clock: &Arc<ManualClock>) -> DeliveryHandle {
    let config = Config::demo(Path::new("state"));
    DeliveryHandle::new(delivery::Setup {
        spool: spool.clone(),
        relay: crate::relay::RelaySettings::from_config(&config.relay, "mx.test").unwrap(),
        etrn_domains: Vec::new(),
        guard: crate::relay::LoopGuard::new("mx.test", &[], &[]),
        clock: clock.clone(),
        hostname: "mx.test".into(),
        tls: delivery::tls::client_configs().unwrap(),
        dns: delivery::dns::DnsResolver::new(Vec::new()),
        watch: delivery::watch::WatchSettings::from_config(&config),
        events: Arc::default(),
    })
}

fn backend_with(
    dir: &Path,
    spool: &SpoolHandle,
    clock: &Arc<ManualClock>,
    delivery: DeliveryHandle,
) -> DaemonBackend {
    let mut config = Config::demo(dir);
    config.spool.path = dir.join("spool.img").to_string_lossy().into_owned();
    let path = dir.join("mailbag.toml");
    std::fs::write(&path, config.to_toml().unwrap()).unwrap();
    let clock: Arc<dyn Clock> = clock.clone();
    let parts = Parts {
        spool: spool.clone(),
        delivery,
        events: Arc::new(EventLog::default()),
        clock,
        runtime: runtime(),
    };
    DaemonBackend::new(parts, config, path)
}

fn backend(dir: &Path, spool: &SpoolHandle, clock: &Arc<ManualClock>) -> DaemonBackend {
    backend_with(dir, spool, clock, delivery(spool, clock))
}

/// Stores a message received at `at`; returns its id as the page spells it.
fn store(spool: &SpoolHandle, at: u64, from: &str, to: &str, body: Vec<u8>) -> MessageId {
    let env = Envelope::new(from, [to]).unwrap();
    let id = spool
        .run_blocking(move |s| {
            let mut p = s.begin(&env, 0)?;
            // Whole chunks stream in; the rest goes with the commit.
            let full = body.len() / crate::spool::CHUNK * crate::spool::CHUNK;
            s.append(&mut p, &body[..full])?;
            let id = s.commit(p, &env, &body[full..], at)?;
            s.sync()?;
            Ok::<_, crate::spool::SpoolError>(id)
        })
        .unwrap()
        .unwrap();
    MessageId::parse(&id.to_string()).unwrap()
}

fn mail(subject: &str, filler: usize) -> Vec<u8> {
    let mut m = format!("From: a@b.test\r\nSubject: {subject}\r\n\r\n").into_bytes();
    m.extend((0..filler).map(|i| b"abcdefghij\r\n"[i % 12]));
    m
}

fn query(sort: SortKey, descending: bool, offset: usize, limit: usize) -> QueueQuery {
    QueueQuery {
        offset,
        limit,
        sort,
        descending,
        ..QueueQuery::default()
    }
}

#[test]
fn pages_sort_filter_and_show_what_the_spool_holds() {
    let dir = TempDir::new("list");
    let (spool, thread, clock) = start(&dir.0);
    let mut ids = Vec::new();
    for i in 0..7u64 {
        let to = if i % 2 == 0 {
            "x@example.test"
        } else {
            "y@other.test"
        };
        let from = format!("s{}@senders.test", 7 - i);
        ids.push(store(
            &spool,
            NOW - 1000 + i * 10,
            &from,
            to,
            mail(&format!("n{i}"), 100 * i as usize),
        ));
    }
    clock.advance(embassy_time::Duration::from_secs(5));
    let b = backend(&dir.0, &spool, &clock);

    let p = b.queue_page(&query(SortKey::Age, false, 0, 3)).unwrap();
    assert_eq!(p.total, 7);
    assert_eq!(
        p.rows.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        ids[..3]
    );
    assert_eq!(p.rows[0].subject, "n0");
    assert_eq!(p.rows[0].age_secs, 1005);
    let p = b.queue_page(&query(SortKey::Age, false, 6, 3)).unwrap();
    assert_eq!(p.rows.len(), 1, "the last page holds the rest");

    let p = b.queue_page(&query(SortKey::Size, true, 0, 1)).unwrap();
    assert_eq!(p.rows[0].id, ids[6], "largest first");
    let p = b.queue_page(&query(SortKey::Sender, false, 0, 7)).unwrap();
    assert_eq!(p.rows[0].sender, "s1@senders.test");

    let mut q = query(SortKey::Age, false, 0, 50);
    q.domain = Some("OTHER.test".into());
    let p = b.queue_page(&q).unwrap();
    assert_eq!(p.total, 3);
    assert!(p.rows.iter().all(|r| r.recipients == ["y@other.test"]));
    q.domain = None;
    q.text = Some("N4".into());
    let p = b.queue_page(&q).unwrap();
    assert_eq!(
        (p.total, p.rows[0].id.clone()),
        (1, ids[4].clone()),
        "subject search"
    );

    let st = b.status().unwrap();
    assert_eq!(st.queue_depth, 7);
    assert_eq!(st.oldest_age_secs, Some(1005));
    assert!(st.spool_used_bytes > 0 && st.spool_free_bytes > 0);
    assert!(
        !st.primary.up,
        "a next hop nobody has reached yet is not shown as up"
    );
    drop((b, spool));
    thread.join().unwrap();
}

#[test]
fn message_source_is_byte_identical_across_chunks() {
    let dir = TempDir::new("source");
    let (spool, thread, clock) = start(&dir.0);
    // Longer than several reader chunks, and not a multiple of one.
    let body = mail(
        "<script>alert(1)</script>",
        3 * super::web_backend::SOURCE_CHUNK + 777,
    );
    let id = store(&spool, NOW, "a@b.test", "x@example.test", body.clone());
    let b = backend(&dir.0, &spool, &clock);
    let mut got = Vec::new();
    b.message_source(&id)
        .unwrap()
        .read_to_end(&mut got)
        .unwrap();
    assert_eq!(got, body);
    let info = b.message(&id).unwrap();
    assert_eq!(
        info.row.subject, "<script>alert(1)</script>",
        "kept as text, unescaped"
    );
    assert_eq!(info.received, NOW);
    let missing = MessageId::parse("00000000DEADBEEF").unwrap();
    assert_eq!(b.message(&missing).unwrap_err(), BackendError::NotFound);
    assert!(b.message_source(&missing).is_err());
    drop((b, spool));
    thread.join().unwrap();
}

#[test]
fn retry_and_delete_persist_across_a_remount() {
    let dir = TempDir::new("act");
    let (spool, thread, clock) = start(&dir.0);
    let a = store(&spool, NOW, "a@b.test", "x@example.test", mail("a", 10));
    let c = store(&spool, NOW, "a@b.test", "x@example.test", mail("c", 10));
    // Give `a` a future attempt, as a failed delivery would.
    let sid: crate::spool::MessageId = a.as_str().parse().unwrap();
    spool
        .run_blocking(move |s| {
            let mut m = s.meta(sid)?;
            m.next_attempt_unix = NOW + 3600;
            m.attempts = 2;
            s.update(&m)
        })
        .unwrap()
        .unwrap();
    let b = backend(&dir.0, &spool, &clock);
    let gone = MessageId::parse("00000000DEADBEEF").unwrap();
    let r = b
        .act(QueueAction::Retry, &[a.clone(), gone.clone()])
        .unwrap();
    assert_eq!((r.done, r.missing), (1, vec![gone]));
    assert_eq!(
        b.act(QueueAction::Delete, std::slice::from_ref(&c))
            .unwrap()
            .done,
        1
    );
    // One message is left (a); flushing makes it due now.
    assert_eq!(b.flush(None).unwrap(), 1);
    assert_eq!(b.flush(Some("nowhere.test")).unwrap(), 0);
    let kinds: Vec<_> = b.log(10).unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, ["flushed", "flushed", "deleted", "retried"]);
    drop((b, spool));
    thread.join().unwrap();

    let (spool, thread, clock) = start(&dir.0);
    let b = backend(&dir.0, &spool, &clock);
    let p = b.queue_page(&query(SortKey::Age, false, 0, 10)).unwrap();
    assert_eq!(p.total, 1, "the deleted message stays deleted");
    assert_eq!(p.rows[0].id, a);
    assert_eq!(p.rows[0].next_attempt, None, "retry: due now");
    assert_eq!(p.rows[0].attempts, 2);
    drop((b, spool));
    thread.join().unwrap();
}

#[test]
fn settings_save_to_the_file_and_read_back() {
    let dir = TempDir::new("settings");
    let (spool, thread, clock) = start(&dir.0);
    let b = backend(&dir.0, &spool, &clock);
    let values = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let bad = values(&[("relay.lifetime-days", "0")]);
    assert_eq!(b.validate_settings(&bad)[0].field, "relay.lifetime-days");
    let before = std::fs::read_to_string(dir.0.join("mailbag.toml")).unwrap();
    assert!(matches!(b.save_settings(&bad), Err(SaveError::Invalid(_))));
    assert_eq!(
        std::fs::read_to_string(dir.0.join("mailbag.toml")).unwrap(),
        before
    );

    let good = values(&[
        ("policy.domains", "example.test\nbranch.example.test"),
        ("smtp.listen", "127.0.0.1:2600"),
    ]);
    let out = b.save_settings(&good).unwrap();
    assert!(!out.applied);
    assert_eq!(out.restart_needed, ["policy.domains", "smtp.listen"]);
    let back = Config::load(&dir.0.join("mailbag.toml")).unwrap();
    assert_eq!(back.policy.domains, ["example.test", "branch.example.test"]);
    assert_eq!(back.smtp.listen, ["127.0.0.1:2600"]);
    let shown = b.settings().unwrap();
    let v = shown.iter().find(|f| f.key == "smtp.listen").unwrap();
    assert_eq!(v.value, "127.0.0.1:2600", "the form shows what was saved");

    // A UCI file stays UCI.
    let uci = dir.0.join("mailbag");
    Config::demo(&dir.0).save_uci(&uci).unwrap();
    let clock_dyn: Arc<dyn Clock> = clock.clone();
    let parts = Parts {
        spool: spool.clone(),
        delivery: delivery(&spool, &clock),
        events: Arc::new(EventLog::default()),
        clock: clock_dyn,
        runtime: runtime(),
    };
    let b2 = DaemonBackend::new(parts, Config::demo(&dir.0), uci.clone());
    b2.save_settings(&values(&[("relay.lifetime-days", "9")]))
        .unwrap();
    let text = std::fs::read_to_string(&uci).unwrap();
    assert!(text.contains("config relay"), "{text}");
    assert_eq!(Config::load(&uci).unwrap().relay.lifetime_days, 9);
    drop((b, b2, spool));
    thread.join().unwrap();
}

#[test]
fn a_page_of_a_large_queue_reads_only_its_rows() {
    const HELD: u64 = 600;
    const OTHER: u64 = 100;
    let dir = TempDir::new("large");
    let (spool, thread, clock) = start(&dir.0);
    for part in 0..3u64 {
        spool
            .run_blocking(move |s| {
                for i in (part * HELD / 3)..((part + 1) * HELD / 3) {
                    let to = if i < OTHER {
                        "y@other.test"
                    } else {
                        "x@example.test"
                    };
                    let env = Envelope::new("a@b.test", [to]).unwrap();
                    let p = s.begin(&env, 0)?;
                    s.commit(p, &env, &mail(&format!("m{i}"), 50), NOW - i)?;
                }
                s.sync()
            })
            .unwrap()
            .unwrap();
    }
    let b = backend(&dir.0, &spool, &clock);
    let t = std::time::Instant::now();
    let p = b.queue_page(&query(SortKey::Age, false, 0, 50)).unwrap();
    let by_index = t.elapsed();
    assert_eq!((p.total, p.rows.len()), (HELD as usize, 50));
    assert_eq!(p.rows[0].subject, format!("m{}", HELD - 1), "oldest first");

    let mut q = query(SortKey::Age, false, 0, 50);
    q.text = Some("m42".into());
    let e = b.queue_page(&q).unwrap_err();
    assert!(e.to_string().contains("filter by domain first"), "{e}");
    q.domain = Some("other.test".into());
    let t = std::time::Instant::now();
    let p = b.queue_page(&q).unwrap();
    let by_scan = t.elapsed();
    assert_eq!(p.total, 1);
    assert_eq!(p.rows[0].subject, "m42");
    eprintln!("{HELD} held: page of 50 by age {by_index:?}; text search over {OTHER} {by_scan:?}");
    drop((b, spool));
    thread.join().unwrap();
}

#[test]
fn bounce_queues_a_report_and_removes_the_message_but_not_while_it_is_delivered() {
    let dir = TempDir::new("bounce");
    let (spool, thread, clock) = start(&dir.0);
    let a = store(
        &spool,
        NOW,
        "a@b.test",
        "x@example.test",
        mail("bounce me", 10),
    );
    let null = store(&spool, NOW, "", "y@example.test", mail("from <>", 10));
    let busy = store(&spool, NOW, "a@b.test", "z@example.test", mail("busy", 10));
    let d = delivery(&spool, &clock);
    let b = backend_with(&dir.0, &spool, &clock, d.clone());
    let sid = |m: &MessageId| m.as_str().parse::<crate::spool::MessageId>().unwrap();

    // `busy` is being delivered: neither bounce nor delete touches it, nor the others
    // named with it (all or nothing).
    let _delivering = d.try_claim(sid(&busy)).unwrap();
    for action in [QueueAction::Bounce, QueueAction::Delete] {
        let e = b.act(action, &[a.clone(), busy.clone()]).unwrap_err();
        assert!(
            matches!(&e, BackendError::Unavailable(why) if why.contains("being delivered")),
            "{e}"
        );
    }
    assert_eq!(
        b.queue_page(&query(SortKey::Age, false, 0, 10))
            .unwrap()
            .total,
        3
    );

    let r = b
        .act(QueueAction::Bounce, &[a.clone(), null.clone()])
        .unwrap();
    assert_eq!((r.done, r.missing.len()), (2, 0));
    assert_eq!(d.in_flight().len(), 1, "the page's claims are released");
    // Left: `busy` and one report to a@b.test from <>; nothing for the null sender.
    let held = spool
        .run_blocking(|s| {
            s.list()
                .iter()
                .map(|e| s.meta(e.id).unwrap())
                .collect::<Vec<_>>()
        })
        .unwrap();
    assert_eq!(held.len(), 2, "{held:?}");
    let report = held.iter().find(|m| m.id != sid(&busy)).unwrap();
    assert_eq!(report.sender.as_str(), "");
    assert_eq!(report.recipients[0].address.as_str(), "a@b.test");
    let mut body = vec![0u8; 8192];
    let rid = report.id;
    let n = spool
        .run_blocking(move |s| s.read_body(rid, 0, &mut body).map(|n| body[..n].to_vec()))
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&n);
    assert!(
        text.contains("Status: 5.0.0") && text.contains("Subject: bounce me"),
        "{text}"
    );
    let kinds: Vec<_> = b.log(10).unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, ["bounced", "bounced"]);
    drop((b, d, spool));
    thread.join().unwrap();
}

#[test]
fn saving_applies_policy_and_routes_at_once_and_names_what_needs_a_restart() {
    use crate::config::RunSettings;
    use crate::daemon::inbound::InboundHandle;
    use crate::policy::Policy as _;
    use crate::smtp::Mailbox;

    use super::reload::Reloader;

    let dir = TempDir::new("reload");
    let (spool, thread, clock) = start(&dir.0);
    let config = Config::demo(&dir.0);
    let capacity = spool::GaugeCapacity(Arc::clone(&spool.gauge));
    let run = RunSettings::new_checked(config.clone()).unwrap();
    let d = delivery(&spool, &clock);
    let guard = crate::daemon::inbound::guard::Guard::new(
        d.clone(),
        crate::daemon::delivery::dns::DnsResolver::new(Vec::new()),
        run.max_sessions,
        run.protection.guesses,
        dir.0.join("verify.cache"),
        0,
    );
    let inbound = InboundHandle::new(&run, capacity, false, guard);
    let reloader = Arc::new(Reloader::new(
        config.clone(),
        inbound.clone(),
        d.clone(),
        None,
    ));
    let b = backend(&dir.0, &spool, &clock).with_reloader(Arc::clone(&reloader));
    let rcpt = Mailbox::parse_bare("user@new.test", false).unwrap();
    let session = inbound.settings();
    assert!(session.session.policy.recipient(&rcpt, 0).is_err());

    let values: mailbag_web::backend::SettingsValues = [
        ("policy.domains", "example.test\nnew.test"),
        ("relay.routes", "new.test = 127.0.0.1:2999"),
        ("smtp.listen", "127.0.0.1:2600"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let out = b.save_settings(&values).unwrap();
    assert!(out.applied);
    assert_eq!(out.restart_needed, ["smtp.listen"]);
    assert!(
        inbound
            .settings()
            .session
            .policy
            .recipient(&rcpt, 0)
            .is_ok(),
        "a new session accepts the new domain"
    );
    assert!(
        session.session.policy.recipient(&rcpt, 0).is_err(),
        "a session in progress keeps its rules"
    );
    assert!(inbound.settings().domains.contains(&"new.test".to_owned()));
    let settings = d.settings();
    let route = format!("{:?}", settings.routes.for_domain("new.test").target);
    assert!(
        route.contains("2999"),
        "the next delivery takes the new route: {route}"
    );
    let running = reloader.running();
    assert_eq!(
        running.smtp.listen, config.smtp.listen,
        "listeners stay until a restart"
    );
    assert_eq!(running.policy.domains, ["example.test", "new.test"]);
    assert!(
        b.log(10).unwrap()[0]
            .text
            .contains("applied, except (restart needed): smtp.listen")
    );

    // Saved again unchanged: nothing more to apply, the listener still waits for a restart.
    let again = b.save_settings(&values).unwrap();
    assert_eq!(again.restart_needed, ["smtp.listen"]);
    // The inbound handle's guard holds a delivery handle, which holds the spool's.
    drop((b, reloader, inbound, d, spool));
    thread.join().unwrap();
}
