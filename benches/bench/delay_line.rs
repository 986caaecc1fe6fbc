//! The delay line (`--broker-delay-ms`): a TCP proxy in front of the broker that delays each
//! direction by a fixed time, a network with that latency and unlimited bandwidth. Every chunk
//! read is stamped and written `delay` later, in order. Its threads run in the harness.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Listens on a free port, forwarding each connection to `to`; returns the port.
pub fn start(to: &str, delay: Duration) -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let to = to.to_string();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(&to) else {
                continue;
            };
            for (from, into) in [(&client, &server), (&server, &client)] {
                if let (Ok(from), Ok(into)) = (from.try_clone(), into.try_clone()) {
                    pipe(from, into, delay);
                }
            }
        }
    });
    Ok(port)
}

fn pipe(mut from: TcpStream, mut into: TcpStream, delay: Duration) {
    let _ = into.set_nodelay(true);
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .send((Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    });
    std::thread::spawn(move || {
        for (due, bytes) in rx {
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if into.write_all(&bytes).is_err() {
                break;
            }
        }
        let _ = into.shutdown(std::net::Shutdown::Write);
    });
}
