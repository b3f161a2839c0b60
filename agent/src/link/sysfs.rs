//! Link state read from `/sys/class/net/<if>/`.
