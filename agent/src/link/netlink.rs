//! Link state pushed by the kernel over rtnetlink.
