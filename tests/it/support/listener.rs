//! The accept loop that the test servers share: a loopback TCP listener on its own thread
//! and runtime, which stops (and is joined) when dropped.

use std::future::Future;
use std::thread::JoinHandle;

/// A listener on `127.0.0.1:<random port>` handing each connection to a handler task.
pub struct LoopbackListener {
    port: u16,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl LoopbackListener {
    /// Starts accepting on a thread named `<name>-<port>`; each connection runs
    /// `on_connection(stream)` as a task. Dropping the listener drops the runtime, which
    /// cancels every task still running and closes its sockets, so the thread always ends.
    pub fn start<F, Fut>(name: &str, on_connection: F) -> Self
    where
        F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (shutdown, mut stop) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("{name}-{port}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    loop {
                        tokio::select! {
                            _ = &mut stop => break,
                            accepted = listener.accept() => {
                                let Ok((stream, _)) = accepted else { continue };
                                tokio::spawn(on_connection(stream));
                            }
                        }
                    }
                });
            })
            .unwrap();
        Self {
            port,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for LoopbackListener {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
