//! **admin**: what the operator sees and does. The operator's queue actions — flush,
//! delete, retry, bounce — implemented once ([`actions`]); the control socket behind
//! `mailbag queue` ([`control`]) and the admin page ([`web`], its backend [`web_backend`],
//! the queue list `queue_view` and the settings form `settings`) both call them; applying
//! a changed configuration to the running daemon ([`reload`]).
//!
//! Admin sits on top: it uses the spool's, delivery's and inbound's handles, never their
//! state; none of them imports admin. What it offers is for the daemon's wiring only:
//! [`actions::Actions`], [`reload::Reloader`], [`control::start`], [`web::start`].

pub mod actions;
pub mod control;
mod queue_view;
pub mod reload;
mod settings;
pub mod web;
pub mod web_backend;
#[cfg(test)]
mod web_backend_tests;
