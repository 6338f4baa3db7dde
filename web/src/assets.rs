//! The page's assets, embedded in the binary: hand-written HTML, CSS and JS, no CDN, no fonts.

/// Upper bound on all assets together.
pub const ASSETS_MAX_BYTES: usize = 100 * 1024;

/// One embedded file.
#[derive(Clone, Copy, Debug)]
pub struct Asset {
    /// Name under `/static/` (or `index.html` for `/`).
    pub name: &'static str,
    /// MIME type.
    pub content_type: &'static str,
    /// Contents.
    pub bytes: &'static [u8],
}

/// Every asset.
pub const ASSETS: [Asset; 3] = [
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        bytes: include_bytes!("../assets/index.html"),
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../assets/style.css"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/app.js"),
    },
];

/// The asset called `name`.
pub fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_fit_the_budget_and_reference_nothing_external() {
        let total: usize = ASSETS.iter().map(|a| a.bytes.len()).sum();
        assert!(total <= ASSETS_MAX_BYTES, "assets are {total} bytes");
        for a in ASSETS {
            let text = String::from_utf8_lossy(a.bytes);
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "{} links outside",
                a.name
            );
            for sink in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
            ] {
                assert!(
                    !text.contains(sink),
                    "{} uses {sink}: mail values must stay text",
                    a.name
                );
            }
            assert!(
                !text.contains("@import") && !text.contains("@font-face"),
                "{} pulls fonts/styles",
                a.name
            );
        }
    }
}
