//! A minimal SMTP client for `notify` mail: plain SMTP to a configured relay (a local MTA),
//! EHLO, MAIL, RCPT, DATA with dot-stuffing, QUIT. Addresses were checked at load to be plain
//! (no spaces, controls or angle brackets), and header values are stripped of line breaks.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Reads one (possibly multi-line) reply; answers its code and text.
fn reply(r: &mut impl BufRead) -> Result<(u16, String), String> {
    let mut text = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Err("the relay closed the connection".into());
        }
        text.push_str(line.trim_end());
        text.push(' ');
        let code = line
            .get(..3)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("bad reply {line:?}"))?;
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok((code, text.trim_end().to_owned()));
        }
    }
}

fn expect(r: &mut impl BufRead, ok: &[u16], step: &str) -> Result<String, String> {
    let (code, text) = reply(r)?;
    if ok.contains(&code) {
        Ok(text)
    } else {
        Err(format!("{step}: {text}"))
    }
}

fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Sends one message; answers the relay's reply to the message data.
pub fn send(
    server: &str,
    helo: &str,
    from: &str,
    to: &[String],
    subject: &str,
    body: &str,
    timeout: Duration,
) -> Result<String, String> {
    let addr = server
        .to_socket_addrs()
        .map_err(|e| format!("{server}: {e}"))?
        .next()
        .ok_or_else(|| format!("{server}: no address"))?;
    let stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("{server}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let mut w = stream.try_clone().map_err(|e| e.to_string())?;
    let mut r = BufReader::new(stream);
    let mut say = |line: String| {
        w.write_all(format!("{line}\r\n").as_bytes())
            .map_err(|e| e.to_string())
    };
    expect(&mut r, &[220], "greeting")?;
    say(format!("EHLO {}", one_line(helo)))?;
    expect(&mut r, &[250], "EHLO")?;
    say(format!("MAIL FROM:<{from}>"))?;
    expect(&mut r, &[250], "MAIL FROM")?;
    for t in to {
        say(format!("RCPT TO:<{t}>"))?;
        expect(&mut r, &[250, 251], "RCPT TO")?;
    }
    say("DATA".into())?;
    expect(&mut r, &[354], "DATA")?;
    let mut msg = format!(
        "From: {from}\r\nTo: {}\r\nSubject: {}\r\nDate: {}\r\nContent-Type: application/json; charset=utf-8\r\n\r\n",
        to.join(", "),
        one_line(subject),
        chrono::Utc::now().to_rfc2822()
    );
    for line in body.lines() {
        if line.starts_with('.') {
            msg.push('.');
        }
        msg.push_str(line);
        msg.push_str("\r\n");
    }
    msg.push('.');
    say(msg)?;
    let accepted = expect(&mut r, &[250], "message")?;
    let _ = say("QUIT".into());
    Ok(accepted)
}
