//! STARTTLS: opportunistic and required policies.

use super::*;

#[test]
fn opportunistic_starttls_restarts_with_ehlo_and_drops_plaintext() {
    let mut h = Host::deliver(TlsPolicy::Opportunistic, job(&["a@example.com"]), b"");
    server!(
        h,
        "220 mx\r\n",
        "250-mx\r\n250-STARTTLS\r\n250 PIPELINING\r\n"
    );
    expect_sent!(h, "EHLO relay.example.net\r\nSTARTTLS\r\n");
    // A "250" injected after the 220 in the same read must not count (CVE-2011-0411).
    server!(h, "220 ready\r\n250 injected\r\n");
    assert_eq!(h.actions, vec![ClientAction::StartTls]);
    expect_sent!(h, "EHLO relay.example.net\r\n");
    server!(h, "250-mx\r\n250 PIPELINING\r\n");
    expect_sent!(
        h,
        "MAIL FROM:<s@sender.example>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n"
    );
    assert!(h.c.tls_verified());

    // Refused STARTTLS: opportunistic goes on in plaintext.
    let mut h = Host::deliver(TlsPolicy::Opportunistic, job(&["a@example.com"]), b"");
    server!(
        h,
        "220 mx\r\n",
        "250-mx\r\n250 STARTTLS\r\n",
        "454 4.7.0 no TLS now\r\n"
    );
    expect_sent!(
        h,
        "EHLO relay.example.net\r\nSTARTTLS\r\nMAIL FROM:<s@sender.example>\r\n"
    );
}

#[test]
fn required_tls_fails_temporarily_when_missing_refused_broken_or_unverified() {
    let cases: &[(TlsPolicy, &str, Option<bool>, FailReason)] = &[
        (
            TlsPolicy::Require,
            "250 mx\r\n",
            Some(true),
            FailReason::TlsNotOffered,
        ),
        (
            TlsPolicy::Require,
            "250-mx\r\n250 STARTTLS\r\n454 4.7.0 no\r\n",
            Some(true),
            FailReason::TlsRefused,
        ),
        (
            TlsPolicy::Require,
            "250-mx\r\n250 STARTTLS\r\n220 go\r\n",
            None,
            FailReason::TlsHandshake,
        ),
        (
            TlsPolicy::RequireVerify,
            "250-mx\r\n250 STARTTLS\r\n220 go\r\n",
            Some(false),
            FailReason::TlsUnverified,
        ),
    ];
    for (policy, ehlo, verified, reason) in cases {
        let mut h = Host::deliver(*policy, job(&["a@example.com"]), b"");
        h.tls_verified = *verified;
        server!(h, "220 mx\r\n", ehlo);
        let f = h.failure();
        assert_eq!(
            (f.reason, f.permanent),
            (*reason, false),
            "{policy:?} {ehlo:?}"
        );
        assert!(!h.sent().contains("MAIL FROM"), "no mail in plaintext");
    }
    // require with a certificate that did not verify is fine.
    let mut h = Host::deliver(TlsPolicy::Require, job(&["a@example.com"]), b"");
    h.tls_verified = Some(false);
    server!(
        h,
        "220 mx\r\n",
        "250-mx\r\n250 STARTTLS\r\n",
        "220 go\r\n",
        "250 mx\r\n"
    );
    assert!(h.sent().ends_with("MAIL FROM:<s@sender.example>\r\n"));
}
