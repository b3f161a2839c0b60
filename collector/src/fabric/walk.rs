//! The single-path walk: one flow from switch to switch until it is delivered, dropped or stopped; and the return flow with its asymmetry.
