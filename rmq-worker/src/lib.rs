//! The rmq worker CLI.
