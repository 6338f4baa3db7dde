//! Settings this build cannot honour. The router package leaves some features out to fit
//! its flash (cargo features off in the feed build, see `openwrt-package/mailbag/Makefile`);
//! a configuration asking for one is an error naming the key and the missing feature, never
//! silently ignored. The default (Linux, silo) build has every feature, and this finds
//! nothing.

use super::{Config, Report};

/// Adds an error for every setting that needs a feature this build lacks.
pub(super) fn check(c: &Config, r: &mut Report) {
    // Only read in builds that lack a feature.
    let _ = (c, &mut *r);
    #[cfg(not(feature = "silo"))]
    if !c.monitor.routers.is_empty() {
        r.error(
            "monitor.routers",
            lacks(
                "silo",
                "watching routers",
                "routers are watched by the silo (the provider's server); an edge only sends \
                 beacons (monitor.router-id, monitor.beacon-secret, relay.upstream-silo)",
            ),
        );
    }
    #[cfg(not(feature = "scan"))]
    if !c.scan.clamd.trim().is_empty() {
        r.error(
            "scan.clamd",
            lacks(
                "scan",
                "virus scanning (clamd)",
                "let the silo scan (it has the feature), or build the package with the 'scan' \
                 feature",
            ),
        );
    }
    #[cfg(not(feature = "verify-tls"))]
    {
        if c.relay.tls_policy.trim() == "require-verify" {
            r.error(
                "relay.tls-policy",
                lacks(
                    "verify-tls",
                    "'require-verify' (certificates checked against the system's CAs)",
                    "use 'require' (encrypted, certificate not checked) or deliver through a silo",
                ),
            );
        }
        for (i, url) in c.notify.webhook.iter().enumerate() {
            if url.trim().to_ascii_lowercase().starts_with("https:") {
                r.error(
                    format!("notify.webhook[{i}]"),
                    lacks(
                        "verify-tls",
                        "https webhooks",
                        "use an http:// URL on the LAN, or mail notices (notify.to)",
                    ),
                );
            }
        }
    }
    // The page also serves `/metrics`; LuCI (luci-app-mailbag) replaces both on a router.
    #[cfg(not(feature = "web"))]
    {
        if !c.web.listen.is_empty() {
            r.error(
                "web.listen",
                lacks(
                    "web",
                    "the built-in admin page",
                    "manage mailbag in LuCI (luci-app-mailbag) and leave web.listen empty",
                ),
            );
        }
        if !c.monitor.metrics_token.trim().is_empty() {
            r.error(
                "monitor.metrics-token",
                lacks(
                    "web",
                    "/metrics (served by the built-in admin page)",
                    "leave it empty; LuCI's mailbag status page shows the state",
                ),
            );
        }
    }
}

/// "this mailbag was built without the FEATURE feature ...".
#[allow(dead_code)] // used only by builds that lack a feature
fn lacks(feature: &str, what: &str, instead: &str) -> String {
    format!(
        "{what}: this mailbag was built without the '{feature}' feature (the router package \
         leaves it out to fit in flash); {instead}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In the default build every feature is there; in the router build each gated setting
    /// is an error naming its key.
    #[test]
    fn gated_settings_are_errors_only_where_the_feature_is_missing() {
        let mut c = Config::default();
        c.relay.tls_policy = "require-verify".into();
        c.notify.webhook = vec!["http://lan/hook".into(), "HTTPS://ntfy.example/x".into()];
        c.monitor.routers = vec!["office1 secret1".into()];
        c.scan.clamd = "127.0.0.1:3310".into();
        c.web.listen = vec!["192.168.1.1:8025".into()];
        c.monitor.metrics_token = "a-token-long-enough-for-metrics".into();
        let mut r = Report::default();
        check(&c, &mut r);
        let keys: Vec<&str> = r.errors.iter().map(|i| i.key.as_str()).collect();
        let mut want = Vec::new();
        if cfg!(not(feature = "silo")) {
            want.push("monitor.routers");
        }
        if cfg!(not(feature = "scan")) {
            want.push("scan.clamd");
        }
        if cfg!(not(feature = "verify-tls")) {
            want.extend(["relay.tls-policy", "notify.webhook[1]"]);
        }
        if cfg!(not(feature = "web")) {
            want.extend(["web.listen", "monitor.metrics-token"]);
        }
        assert_eq!(keys, want, "{:?}", r.errors);
        for i in &r.errors {
            assert!(
                i.msg.contains("this mailbag was built without the '"),
                "{}",
                i.msg
            );
        }
    }
}
