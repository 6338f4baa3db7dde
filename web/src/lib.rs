//! mailbag-web: the LuCI-style admin page (placeholder until its issue lands).
