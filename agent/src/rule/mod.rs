//! Rules: threshold-over-window expressions per interface.
