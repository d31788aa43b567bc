//! Connection commands: PING, ECHO, SELECT, AUTH, HELLO, CLIENT, INFO, QUIT, COMMAND. They
//! touch only the session (and the gate for AUTH), never the data.

use std::sync::Arc;

use bytes::Bytes;

use super::{NOT_INT, Op, SYNTAX, command_count, eq_ci};
use crate::resp::{Reply, parse_i64};
use crate::{Gate, Keyspace};

/// The version reported by HELLO and INFO: that of the redis the differential test runs against.
pub const REDIS_VERSION: &str = "7.0.15";
pub const NOAUTH: &str = "NOAUTH Authentication required.";
pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// Per-connection state.
pub struct Session {
    pub id: u64,
    pub resp3: bool,
    pub name: Option<Bytes>,
    pub keyspace: Option<(Keyspace, Arc<str>)>,
    pub quit: bool,
}

impl Session {
    pub fn new(id: u64) -> Session {
        Session { id, resp3: false, name: None, keyspace: None, quit: false }
    }

    pub fn authenticated(&self) -> bool {
        self.keyspace.is_some()
    }
}

/// What a connection command may need besides the session.
pub struct Env<'a> {
    pub gate: &'a dyn Gate,
    pub scope: Option<&'a str>,
    /// Sections for INFO, computed by the server (it knows uptime, clients, keys).
    pub info: &'a dyn Fn(&Session) -> Vec<(&'static str, String)>,
}

/// Subcommand lookup and arity, checked before auth as redis does.
pub fn check_subcommand(op: Op, args: &[Bytes]) -> Result<(), Reply> {
    let (container, subs): (&str, &[(&str, i32)]) = match op {
        Op::Client => ("CLIENT", &[("setname", 3), ("getname", 2), ("id", 2), ("setinfo", 4)]),
        Op::Command if args.len() >= 2 => ("COMMAND", &[("count", 2), ("docs", -2), ("info", -2), ("list", -2)]),
        _ => return Ok(()),
    };
    let sub = &args[1];
    let Some((name, arity)) = subs.iter().find(|(n, _)| eq_ci(sub, n)) else {
        let shown = String::from_utf8_lossy(&sub[..sub.len().min(128)]).into_owned();
        return Err(Reply::err(format!("ERR unknown subcommand '{shown}'. Try {container} HELP.")));
    };
    if !super::arity_ok(*arity, args.len()) {
        return Err(super::wrong_args(&format!("{}|{name}", container.to_ascii_lowercase())));
    }
    Ok(())
}

/// Runs a connection command. Sets `session.quit` for QUIT.
pub fn run(op: Op, args: &[Bytes], session: &mut Session, env: &Env<'_>) -> Reply {
    match op {
        Op::Ping => match args.len() {
            1 => Reply::Status("PONG"),
            2 => Reply::Bulk(args[1].clone()),
            _ => super::wrong_args("ping"),
        },
        Op::Echo => Reply::Bulk(args[1].clone()),
        Op::Select => match parse_i64(&args[1]) {
            None => Reply::err(NOT_INT),
            Some(0) => Reply::Ok,
            Some(_) => Reply::err("ERR DB index is out of range"),
        },
        Op::Auth => auth(args, session, env),
        Op::Hello => hello(args, session, env),
        Op::Client => client(args, session),
        Op::Info => info(args, session, env),
        Op::Quit => {
            session.quit = true;
            Reply::Ok
        }
        Op::Command => command(args),
        _ => Reply::err("ERR data command reached the connection handler"),
    }
}

fn authenticate(user: Option<&Bytes>, pass: &Bytes, session: &mut Session, env: &Env<'_>) -> bool {
    let user = user.map(|u| String::from_utf8_lossy(u).into_owned());
    let pass = String::from_utf8_lossy(pass);
    match env.gate.authenticate(env.scope, user.as_deref(), &pass) {
        Some(ks) => {
            let id: Arc<str> = ks.id.as_str().into();
            session.keyspace = Some((ks, id));
            true
        }
        None => false,
    }
}

fn auth(args: &[Bytes], session: &mut Session, env: &Env<'_>) -> Reply {
    let ok = match args.len() {
        2 => authenticate(None, &args[1], session, env),
        3 => authenticate(Some(&args[1]), &args[2], session, env),
        _ => return Reply::err(SYNTAX),
    };
    if ok { Reply::Ok } else { Reply::err(WRONGPASS) }
}

/// Redis's rule for client names and library info: printable ASCII without spaces.
fn valid_name(name: &[u8]) -> bool {
    name.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

const BAD_NAME: &str = "ERR Client names cannot contain spaces, newlines or special characters.";

fn hello(args: &[Bytes], session: &mut Session, env: &Env<'_>) -> Reply {
    let mut version = None;
    let mut next = 1;
    if args.len() >= 2 {
        match parse_i64(&args[1]) {
            None => return Reply::err("ERR Protocol version is not an integer or out of range"),
            Some(v) if !(2..=3).contains(&v) => return Reply::err("NOPROTO unsupported protocol version"),
            Some(v) => version = Some(v),
        }
        next = 2;
    }
    let mut credentials = None;
    let mut name = None;
    let mut j = next;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if eq_ci(&args[j], "auth") && more >= 2 {
            credentials = Some((&args[j + 1], &args[j + 2]));
            j += 2;
        } else if eq_ci(&args[j], "setname") && more >= 1 {
            if !valid_name(&args[j + 1]) {
                return Reply::err(BAD_NAME);
            }
            name = Some(args[j + 1].clone());
            j += 1;
        } else {
            return Reply::err(format!("ERR Syntax error in HELLO option '{}'", String::from_utf8_lossy(&args[j])));
        }
        j += 1;
    }
    if let Some((user, pass)) = credentials
        && !authenticate(Some(user), pass, session, env)
    {
        return Reply::err(WRONGPASS);
    }
    if !session.authenticated() {
        return Reply::err(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> \
             <pass> option can be used to authenticate the client and select the RESP protocol version at the same \
             time",
        );
    }
    if let Some(name) = name {
        session.name = (!name.is_empty()).then_some(name);
    }
    if let Some(v) = version {
        session.resp3 = v == 3;
    }
    let s = Reply::bulk_str;
    Reply::Map(vec![
        (s("server"), s("redis")),
        (s("version"), s(REDIS_VERSION)),
        (s("proto"), Reply::Int(if session.resp3 { 3 } else { 2 })),
        (s("id"), Reply::Int(session.id as i64)),
        (s("mode"), s("standalone")),
        (s("role"), s("master")),
        (s("modules"), Reply::Array(Vec::new())),
    ])
}

fn client(args: &[Bytes], session: &mut Session) -> Reply {
    let sub = &args[1];
    if eq_ci(sub, "setname") {
        if !valid_name(&args[2]) {
            return Reply::err(BAD_NAME);
        }
        session.name = (!args[2].is_empty()).then(|| args[2].clone());
        Reply::Ok
    } else if eq_ci(sub, "getname") {
        session.name.clone().map_or(Reply::Nil, Reply::Bulk)
    } else if eq_ci(sub, "id") {
        Reply::Int(session.id as i64)
    } else {
        // SETINFO (redis 7.2; redis-py 5 sends it on connect): validated, then ignored.
        let attr = &args[2];
        if !eq_ci(attr, "lib-name") && !eq_ci(attr, "lib-ver") {
            return Reply::err(format!("ERR Unrecognized option '{}'", String::from_utf8_lossy(attr)));
        }
        if !valid_name(&args[3]) {
            let attr = String::from_utf8_lossy(attr).to_ascii_lowercase();
            return Reply::err(format!("ERR {attr} cannot contain spaces, newlines or special characters."));
        }
        Reply::Ok
    }
}

fn command(args: &[Bytes]) -> Reply {
    // Clients (redis-cli, ioredis) call these for hints only; an empty answer is accepted.
    match args.get(1) {
        None => Reply::Array(Vec::new()),
        Some(sub) if eq_ci(sub, "count") => Reply::Int(command_count() as i64),
        Some(sub) if eq_ci(sub, "docs") => Reply::Map(Vec::new()),
        Some(_) => Reply::Array(Vec::new()),
    }
}

fn info(args: &[Bytes], session: &Session, env: &Env<'_>) -> Reply {
    let wanted: Vec<String> = args[1..].iter().map(|a| String::from_utf8_lossy(a).to_ascii_lowercase()).collect();
    let all = wanted.is_empty() || wanted.iter().any(|w| matches!(w.as_str(), "all" | "everything" | "default"));
    let mut text = String::new();
    for (section, body) in (env.info)(session) {
        if !all && !wanted.iter().any(|w| w.eq_ignore_ascii_case(section)) {
            continue;
        }
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        text.push_str("# ");
        text.push_str(section);
        text.push_str("\r\n");
        text.push_str(&body);
    }
    Reply::Verbatim(text)
}
