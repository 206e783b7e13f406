mod cli;
mod container;
mod github;
mod http;
mod loader;
mod lock_remote;
mod support;
