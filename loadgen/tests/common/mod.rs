//! Our server for the loadgen tests: on 127.0.0.1:0, in a runtime of its own on a
//! thread of its own, so a test can kill it mid-run (its listener and every
//! connection close at once, as when the process dies).

use std::sync::mpsc;
use std::sync::Arc;

use deviceflow_server::{App, Clock, FileConfig, Settings};

pub const ADMIN: &str = "loadgen-test-admin-token";

pub struct Server {
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// `device` is the `[device]` table's body; `extra` more TOML (other tables).
    pub fn start(device: &str, extra: &str) -> Server {
        let config = format!(
            "[device]\n{device}\n[quotas]\nper_source_rate = 0\nper_client_rate = 0\n[admin]\ntoken = \"{ADMIN}\"\n{extra}\n[[clients]]\nclient_id = \"tv\"\n[[users]]\nusername = \"alice\"\n"
        );
        let settings = Settings::from_file(FileConfig::parse(&config, "test").unwrap()).unwrap();
        let (tx, rx) = mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let base = format!("http://{}", listener.local_addr().unwrap());
                let app = Arc::new(App::new(settings, base.clone(), Clock::System));
                tokio::spawn(deviceflow_server::serve(
                    listener,
                    app,
                    std::future::pending(),
                ));
                tx.send(base).unwrap();
                let _ = stopped.await;
            });
            // Dropping the runtime drops the listener and every connection task.
            rt.shutdown_background();
        });
        let base = rx.recv().unwrap();
        Server {
            base,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Kills the server: the listener and all its connections close now.
    pub fn kill(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A temporary report folder for this test.
pub fn report_dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("deviceflow-loadgen-{name}-{}", std::process::id()))
}
