//! **admin**: what the operator sees and does. The control socket behind `mailbag queue`
//! ([`control`]), the operator's queue actions — flush, delete, bounce — ([`queue_actions`]),
//! the admin page ([`web`], its backend [`web_backend`], the queue list [`queue_view`] and
//! the settings form [`settings`]), and applying a changed configuration to the running
//! daemon ([`reload`]).
//!
//! The page and its views exist only with the `web` cargo feature (plain Linux and the silo);
//! a router build leaves them out, LuCI (luci-app-mailbag) being its admin UI through the
//! control socket.
//!
//! Admin sits on top: it uses the spool's, delivery's and inbound's handles; none of them
//! imports admin. What it offers is for the daemon's wiring only: [`reload::Reloader`],
//! [`control::start`], [`web::start`].

#[cfg(feature = "web")]
pub mod config_tree;
pub mod control;
pub mod json_view;
pub mod message_head;
pub mod queue_actions;
#[cfg(feature = "web")]
pub mod queue_view;
pub mod reload;
#[cfg(feature = "web")]
pub mod settings;
#[cfg(feature = "web")]
pub mod web;
#[cfg(feature = "web")]
pub mod web_backend;
#[cfg(test)]
#[cfg(feature = "web")]
mod web_backend_tests;
