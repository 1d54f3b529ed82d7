//! Chromium driven through chromedriver (WebDriver: JSON over HTTP on localhost), for the tests
//! of the HTML page (tests/html.rs) and of `harness serve` (tests/serve.rs).
//!
//! Without chromium and chromedriver the browser tests print why and pass, unless
//! HARNESS_REQUIRE_BROWSER=1 (CI sets it), where they fail.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// The program that `variable` names (if it is a file), else the first of `names` on PATH.
pub fn find_program(variable: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(variable) {
        return Some(PathBuf::from(path)).filter(|path| path.is_file());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .chain([
                PathBuf::from("/usr/bin"),
                PathBuf::from("/usr/lib/chromium"),
            ])
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// Chromium and chromedriver, or why the browser tests cannot run here.
pub fn browser_programs() -> Result<(PathBuf, PathBuf), String> {
    let chromium = find_program(
        "HARNESS_CHROMIUM",
        &["chromium", "chromium-browser", "google-chrome"],
    )
    .ok_or("no chromium (apt-get install chromium chromium-driver)")?;
    let driver = find_program("HARNESS_CHROMEDRIVER", &["chromedriver"])
        .ok_or("no chromedriver (apt-get install chromium-driver)")?;
    Ok((chromium, driver))
}

/// The browser programs, or `None` after printing why the test is skipped; panics instead when
/// HARNESS_REQUIRE_BROWSER=1.
pub fn programs_or_skip(test: &str) -> Option<(PathBuf, PathBuf)> {
    match browser_programs() {
        Ok(programs) => Some(programs),
        Err(why) if std::env::var("HARNESS_REQUIRE_BROWSER").as_deref() == Ok("1") => {
            panic!("{test}: HARNESS_REQUIRE_BROWSER=1 but {why}")
        }
        Err(why) => {
            eprintln!("{test}: skipped: {why}");
            None
        }
    }
}

/// The target folder (where the harness binary was built), for screenshots.
pub fn target_dir() -> PathBuf {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_harness"));
    binary
        .parent()
        .and_then(Path::parent)
        .map_or_else(super::repo, Path::to_path_buf)
}

/// A minimal HTTP/1.1 exchange with chromedriver: one request per connection.
pub fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(|e| e.to_string())?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    // chromedriver may keep the connection open: read the head, then the body's length.
    let mut response = Vec::new();
    let mut buffer = [0u8; 65536];
    let head_end = loop {
        if let Some(end) = super::http::head_end(&response) {
            break end;
        }
        let n = stream.read(&mut buffer).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!(
                "{method} {path}: the connection closed mid-response"
            ));
        }
        response.extend_from_slice(&buffer[..n]);
    };
    let head = String::from_utf8_lossy(&response[..head_end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|n| n.trim().parse::<usize>().ok());
    let chunked = super::http::is_chunked(&head);
    let complete = |body: &[u8]| match length {
        Some(length) => body.len() >= length,
        None if chunked => body.ends_with(b"0\r\n\r\n"),
        None => false,
    };
    while !complete(&response[head_end + 4..]) {
        let n = stream.read(&mut buffer).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        response.extend_from_slice(&buffer[..n]);
    }
    let response = super::http::Response::parse(&response);
    let value: Value = serde_json::from_slice(&response.body)
        .map_err(|e| format!("{method} {path}: {e}: {}", response.body_text()))?;
    if response.status != 200 {
        return Err(format!(
            "{method} {path}: HTTP {}: {value}",
            response.status
        ));
    }
    Ok(value["value"].clone())
}

/// A chromedriver process and one headless Chromium session.
pub struct Browser {
    driver: Child,
    pub port: u16,
    pub session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub fn start(chromium: &Path, chromedriver: &Path) -> Browser {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let deadline = Instant::now() + Duration::from_secs(30);
        while http(port, "GET", "/status", None)
            .map(|v| v["ready"] != json!(true))
            .unwrap_or(true)
        {
            if Instant::now() > deadline {
                let _ = driver.kill();
                panic!("chromedriver did not answer on port {port} within 30 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().expect("a profile folder");
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1400,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
            "goog:loggingPrefs": {"browser": "ALL", "performance": "ALL"},
        }}});
        let session = match http(port, "POST", "/session", Some(&capabilities)) {
            Ok(value) => value["sessionId"].as_str().unwrap_or_default().to_string(),
            Err(error) => {
                let _ = driver.kill();
                panic!(
                    "chromedriver could not start {}: {error}",
                    chromium.display()
                );
            }
        };
        Browser {
            driver,
            port,
            session,
            _profile: profile,
        }
    }

    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        http(self.port, method, &path, body.as_ref()).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn open(&self, file: &Path) {
        let url = format!("file://{}", file.canonicalize().unwrap().display());
        self.open_url(&url);
    }

    pub fn open_url(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    /// Runs `body` as a function in the page and returns what it returns.
    pub fn script(&self, body: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": body, "args": []})),
        )
    }

    /// Runs `body` as an asynchronous function in the page, which returns by calling
    /// `done(value)`.
    pub fn script_async(&self, body: &str) -> Value {
        self.call(
            "POST",
            "/execute/async",
            Some(json!({
                "script": format!("const done = arguments[arguments.length - 1];\n{body}"),
                "args": [],
            })),
        )
    }

    /// Clicks the sort button of `column` in the runs table and returns the milliseconds from
    /// the click until the browser has drawn the next frame (the sorted table on screen).
    pub fn time_sort(&self, column: &str) -> f64 {
        self.script_async(&format!(
            "const t0 = performance.now();
             document.querySelector(\"th[data-col='{column}'] button.sort\").click();
             requestAnimationFrame(() => setTimeout(() => done(performance.now() - t0), 0));"
        ))
        .as_f64()
        .expect("a number of milliseconds")
    }

    /// Runs `condition` (a function body returning a boolean) until it is true, for up to
    /// ten seconds. WebDriver's page load returns once `document.readyState` is complete,
    /// which is before the navigation entry's `loadEventEnd` is filled in.
    pub fn wait_until(&self, condition: &str) {
        let start = std::time::Instant::now();
        while self.script(condition) != json!(true) {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(10),
                "still false after 10 s: {condition}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    pub fn element(&self, css: &str) -> String {
        let found = self.call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}"))
            .to_string()
    }

    pub fn click(&self, css: &str) {
        let id = self.element(css);
        self.call("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        );
    }

    pub fn window(&self, width: u32, height: u32) {
        self.call(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        );
    }

    pub fn screenshot(&self, name: &str) -> PathBuf {
        let encoded = self.call("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().expect("a base64 screenshot"))
            .expect("base64");
        let path = target_dir().join(name);
        std::fs::write(&path, png).expect("write the screenshot");
        println!("screenshot: {}", path.display());
        path
    }

    /// Chrome's log entries of one type (`browser`: the console; `performance`: DevTools
    /// events), read and cleared.
    pub fn log(&self, kind: &str) -> Vec<Value> {
        self.call("POST", "/se/log", Some(json!({ "type": kind })))
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = http(
            self.port,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The URLs the page asked the network for, from the DevTools events in Chrome's performance
/// log, other than the page itself and `data:` URIs.
pub fn requests(browser: &Browser, page: &str) -> Vec<String> {
    browser
        .log("performance")
        .iter()
        .filter_map(|entry| serde_json::from_str::<Value>(entry["message"].as_str()?).ok())
        .filter(|m| m["message"]["method"] == "Network.requestWillBeSent")
        // Requests of this page's document, not of Chrome's own pages in other tabs.
        .filter(|m| m["message"]["params"]["documentURL"] == page)
        .filter_map(|m| {
            m["message"]["params"]["request"]["url"]
                .as_str()
                .map(String::from)
        })
        .filter(|url| url != page && !url.starts_with("data:"))
        .collect()
}
