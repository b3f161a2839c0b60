//! The trace endpoints' JSON bodies, read and checked: every problem is a 400 naming the field and the fix.
