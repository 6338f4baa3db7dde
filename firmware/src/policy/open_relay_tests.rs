//! Open-relay test: well over a thousand foreign-recipient forms, each sent as `RCPT TO`
//! through a real [`Session`](crate::smtp::Session) with the product [`Checker`]; none may
//! be accepted, while the legitimate forms are.

use crate::smtp::session::tests::{Host, Seen, send};

/// Domains that are not ours: look-alikes, suffixes, prefixes, literals, subdomains.
const FOREIGN_DOMAINS: &[&str] = &[
    "evil.net",
    "example.com.evil.net",
    "example.comevil.net",
    "evil-example.com",
    "example.co",
    "example.org",
    "xample.com",
    "examples.com",
    "sub.example.com",
    "a.b.example.com",
    "www.example.com",
    "example.com.",
    "example.com..",
    ".example.com",
    "example..com",
    "example.com:25",
    "[192.0.2.1]",
    "[127.0.0.1]",
    "[IPv6:::1]",
    "[IPv6:2001:db8::25]",
    "localhost",
    "exаmple.com",
    "еxample.com",
    "example.cοm",
    "example。com",
    "example．com",
    "ｅxample.com",
    "example.com\u{200B}",
    "exam\u{AD}ple.com",
    "example.com.evil.net.",
    "list.example.evil.net",
    "evil.net%example.com",
    "example.com@evil.net",
    "evil.net#example.com",
    "example.com/evil.net",
    "example.com evil.net",
];

/// Local parts paired with the foreign domains.
fn local_parts() -> Vec<String> {
    let mut v: Vec<String> = [
        "user",
        "postmaster",
        "a",
        "User.Name",
        "x+y",
        "a.b.c",
        "!#$&'*+-/=?^_`{|}~",
        "u_s-e.r",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push("l".repeat(64));
    v.push("l".repeat(65));
    v.push("\"quoted user\"".into());
    v
}

/// Local parts that try to relay through one of *our* domains.
const RELAY_HACKS: &[&str] = &[
    "user%evil.net",
    "user%evil.net%",
    "user%evil.net%example.com",
    "user%[192.0.2.1]",
    "evil.net!user",
    "evil.net!example.com!user",
    "user!evil.net",
    "\"user@evil.net\"",
    "\"user%evil.net\"",
    "\"evil.net!user\"",
    "\"user\"",
    "\"\"",
    "\"user\\@evil.net\"",
    "user@evil.net",
    "@evil.net:user",
    "user％evil.net",
    "user﹪evil.net",
    "user＠evil.net",
    "user﹫evil.net",
    "evil.net！user",
    "evil.net﹗user",
    "user..x",
    ".user",
    "user.",
    "user name",
    "user\tname",
    "user(comment)",
    "user<x>",
];

/// Spellings of our own domain (each accepted on its own with a plain local part).
const OUR_DOMAINS: &[&str] = &["example.com", "EXAMPLE.COM", "Example.Com", "list.example"];

fn foreign_forms() -> Vec<String> {
    let mut forms = Vec::new();
    for local in local_parts() {
        for domain in FOREIGN_DOMAINS {
            forms.push(format!("<{local}@{domain}>"));
            forms.push(format!("<{local}@{}>", domain.to_uppercase()));
        }
    }
    for hack in RELAY_HACKS {
        for ours in OUR_DOMAINS {
            forms.push(format!("<{hack}@{ours}>"));
        }
    }
    for ours in OUR_DOMAINS {
        for foreign in FOREIGN_DOMAINS.iter().take(8) {
            // Source routes both ways, and with several hops.
            forms.push(format!("<@{ours}:user@{foreign}>"));
            forms.push(format!("<@{foreign}:user@{ours}>"));
            forms.push(format!("<@{ours},@{foreign}:user@{ours}>"));
            // Two @s, either order; bang path naming the foreign host.
            forms.push(format!("<user@{foreign}@{ours}>"));
            forms.push(format!("<user@{ours}@{foreign}>"));
            forms.push(format!("<{foreign}!user@{ours}>"));
            forms.push(format!("<user%{foreign}@{ours}>"));
        }
        // Unbracketed, padded or doubled brackets around our own domain.
        forms.push(format!("user%evil.net@{ours}"));
        forms.push("<<user@evil.net>>".into());
        forms.push(format!("<user@evil.net> <user@{ours}>"));
        forms.push(format!("<user@{ours}.>"));
        forms.push(format!("<user@{ours} >"));
        forms.push("< user@evil.net>".into());
    }
    // Non-listed users at the domain that has a recipient list are refused (5.1.1).
    for user in [
        "bob",
        "alice.x",
        "alic",
        "alicee",
        "ALICE%evil.net",
        "alice!evil",
    ] {
        forms.push(format!("<{user}@list.example>"));
    }
    forms
}

/// Send `RCPT TO:<form>` in a fresh session; returns the reply.
fn rcpt(form: &str) -> String {
    let mut h = Host::new();
    h.next();
    send!(
        h,
        "EHLO c.example\r\n",
        "MAIL FROM:<s@sender.example> SMTPUTF8\r\n"
    );
    h.expect_reply(250, "");
    h.expect_reply(250, "");
    send!(h, format!("RCPT TO:{form}\r\n"));
    match h.next() {
        Some(Seen::Reply(r)) => r,
        other => panic!("{form}: no reply, got {other:?}"),
    }
}

#[test]
fn no_foreign_recipient_form_is_accepted() {
    let forms = foreign_forms();
    assert!(forms.len() >= 1000, "only {} forms", forms.len());
    let mut relay_denied = 0;
    for form in &forms {
        let reply = rcpt(form);
        assert!(reply.starts_with('5'), "{form:?} got {reply:?}");
        relay_denied += usize::from(reply.starts_with("550 5.7.1"));
    }
    // Most forms parse and reach the policy; the rest are syntax errors (501/553).
    assert!(
        relay_denied * 2 > forms.len(),
        "{relay_denied} of {}",
        forms.len()
    );
}

#[test]
fn legitimate_forms_are_accepted() {
    for form in [
        "<user@example.com>",
        "<user@Example.COM>",
        "<User.Name@EXAMPLE.com>",
        "<user+tag@example.com>",
        "<user+a.b-c@example.com>",
        "<o'brien@example.com>",
        "<jürgen@example.com>",
        "<alice@list.example>",
        "<Alice+news@LIST.EXAMPLE>",
    ] {
        let reply = rcpt(form);
        assert!(reply.starts_with("250 2.1.5"), "{form:?} got {reply:?}");
    }
}
