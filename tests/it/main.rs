mod cli;
mod container;
mod github;
mod http;
mod lock_remote;
mod support;
