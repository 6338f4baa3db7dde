//! mailbag-mime: one streaming MIME scanner (RFC 2045–2047, RFC 2231) for the whole product.
//!
//! The SMTP policy feeds it a message's content while it streams to flash (attachment
//! blocking, header facts for the spam rules); the admin page feeds it a stored message to
//! show headers, a preview and the attachment list. Both get the same structure from the
//! same bytes.
//!
//! # Contract
//!
//! - **Sans-IO.** [`Scanner::feed`] takes any slice of the message (any split, down to one
//!   byte) and reports what it found to a [`Visitor`]; [`Scanner::finish`] ends it. The
//!   scanner never reads or writes; its buffers are allocated once in [`Scanner::new`],
//!   and only a content header's parameters (at most [`HEADER_MAX`] bytes) are parsed
//!   into short-lived strings.
//! - **Bounded memory.** One line buffer of [`LINE_MAX`] bytes (longer lines are scanned
//!   in pieces), one unfolded header of [`HEADER_MAX`] bytes (longer values are cut and
//!   [`Scanner::truncated`] is set), a boundary stack of [`DEPTH_MAX`] entries of at most
//!   [`BOUNDARY_MAX`] bytes, and one part's head (type, charset, names). About 5 KiB in
//!   all, whatever the message's size or shape.
//! - **Structure.** Nested multiparts (RFC 2046 §5.1) to [`DEPTH_MAX`] levels; deeper
//!   ones set [`Scanner::too_deep`] and their parts are not reported. With
//!   [`Options::descend_messages`], a `message/rfc822` part (RFC 2046 §5.2.1) is scanned as
//!   a message in its own right (a forwarded mail's attachments are parts too).
//! - **Names.** `filename`/`name` parameters with RFC 2231 continuations and charsets
//!   (`filename*0*=utf-8''%E2%82%AC; filename*1=x.scr`) and RFC 2047 encoded words inside
//!   quotes (which RFC 2047 §5 forbids and mailers send anyway) are decoded.
//! - **Hostile input** makes results odd, never a panic or unbounded work: every loop
//!   is bounded by the input length or a named constant.

#![forbid(unsafe_code)]

mod decode;
mod params;
mod scanner;
mod words;

pub use decode::{Base64, Encoding};
pub use params::{ContentHead, split_params};
pub use scanner::{Options, Part, Scanner, Visitor};
pub use words::{charset_decode, decode_rfc2231, decode_words, unescape_hex};

/// Longest line kept whole; longer lines are scanned in pieces of this size (RFC 5322
/// §2.1.1 allows 998 octets).
pub const LINE_MAX: usize = 1024;
/// Longest unfolded header (name, colon and value) kept; the rest is cut.
pub const HEADER_MAX: usize = 2048;
/// Deepest multipart/message nesting followed.
pub const DEPTH_MAX: usize = 8;
/// Longest boundary kept (RFC 2046 §5.1.1 allows 70 characters).
pub const BOUNDARY_MAX: usize = 100;
/// Longest file name kept (decoded, in bytes).
pub const NAME_MAX: usize = 255;
/// Longest media type kept (`type/subtype`, RFC 6838 §4.2 allows 127 + 1 + 127).
pub const TYPE_MAX: usize = 255;
/// RFC 2231 continuation sections read per parameter.
pub const SECTIONS_MAX: usize = 32;
