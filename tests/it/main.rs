mod cli;
mod container;
