//! The web page in a real headless Chromium against the in-process
//! collector, fed by fake agents over the real wire protocol: sign-in, the
//! live Fleet page, Alerts, the Links timeline and hostile names; and its
//! access: a phone's width, the keyboard, contrast and time zones. Each test
//! ends with the harness's checks (no console error, nothing off loopback).

mod access;
pub mod harness;
mod pages;
