//! The calls to systemd (`org.freedesktop.systemd1`) and systemd-machined
//! (`org.freedesktop.machine1`) on the system bus, made with zbus.
//!
//! Every conversation runs in a short-lived forked helper process. zbus's
//! blocking API drives its connection from threads of its own, and the
//! runner must stay single-threaded: it `clone3`s the container (again on
//! every reboot) with a raw system call, after which the child allocates
//! memory; a clone taken while another thread held the allocator's lock
//! would hang it. A helper costs one fork, on systemd hosts only.

use super::property::{Property, Value as PropValue};
use zbus::blocking::{Connection, MessageIterator};
use zbus::zvariant::{OwnedObjectPath, Value};

const SYSTEMD: &str = "org.freedesktop.systemd1";
const SYSTEMD_PATH: &str = "/org/freedesktop/systemd1";
const SYSTEMD_MANAGER: &str = "org.freedesktop.systemd1.Manager";
const MACHINED: &str = "org.freedesktop.machine1";
const MACHINED_PATH: &str = "/org/freedesktop/machine1";
const MACHINED_MANAGER: &str = "org.freedesktop.machine1.Manager";

/// How long a helper may take before it is killed.
const HELPER_TIMEOUT_MS: u16 = 30_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Nobody to talk to: no system bus, or the service is not there.
    Unavailable(String),
    /// The service answered with an error, or the helper failed.
    Failed(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Unavailable(m) | Failure::Failed(m) => f.write_str(m),
        }
    }
}

type Outcome = Result<(), Failure>;

/// systemd's `JobRemoved` signals on `conn`, from now on.
fn job_removed(conn: &Connection) -> Result<MessageIterator, Failure> {
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender(SYSTEMD)
        .and_then(|b| b.interface(SYSTEMD_MANAGER))
        .and_then(|b| b.member("JobRemoved"))
        .map_err(failed)?
        .build();
    MessageIterator::for_match_rule(rule, conn, Some(64)).map_err(failed)
}

fn failed(e: zbus::Error) -> Failure {
    match &e {
        zbus::Error::MethodError(name, msg, _) => {
            let text = msg.clone().unwrap_or_else(|| name.to_string());
            match name.as_str() {
                "org.freedesktop.DBus.Error.ServiceUnknown"
                | "org.freedesktop.DBus.Error.NameHasNoOwner" => Failure::Unavailable(text),
                _ => Failure::Failed(text),
            }
        }
        _ => Failure::Failed(e.to_string()),
    }
}

fn system() -> Result<Connection, Failure> {
    Connection::system()
        .map_err(|e| Failure::Unavailable(format!("cannot connect to the system bus: {e}")))
}

/// A call to systemd's manager.
fn systemd<B>(conn: &Connection, method: &str, body: &B) -> zbus::Result<zbus::Message>
where
    B: serde::Serialize + zbus::zvariant::DynamicType,
{
    conn.call_method(
        Some(SYSTEMD),
        SYSTEMD_PATH,
        Some(SYSTEMD_MANAGER),
        method,
        body,
    )
}

/// A call to machined's manager.
fn machined<B>(conn: &Connection, method: &str, body: &B) -> zbus::Result<zbus::Message>
where
    B: serde::Serialize + zbus::zvariant::DynamicType,
{
    conn.call_method(
        Some(MACHINED),
        MACHINED_PATH,
        Some(MACHINED_MANAGER),
        method,
        body,
    )
}

/// Run `f` in a forked helper (`helper.rs`) and return what it returned.
fn in_helper(f: impl FnOnce() -> Outcome) -> Outcome {
    let timeout = std::time::Duration::from_millis(HELPER_TIMEOUT_MS.into());
    let answer = crate::helper::run(timeout, || match f() {
        Ok(()) => "0".to_string(),
        Err(Failure::Unavailable(m)) => format!("1{m}"),
        Err(Failure::Failed(m)) => format!("2{m}"),
    })
    .ok_or_else(|| Failure::Failed("no answer on the system bus (timed out)".into()))?;
    let (tag, msg) = answer.split_at(answer.len().min(1));
    match tag {
        "0" => Ok(()),
        "1" => Err(Failure::Unavailable(msg.to_string())),
        "2" => Err(Failure::Failed(msg.to_string())),
        _ => Err(Failure::Failed("the bus helper died".into())),
    }
}

fn to_value(v: &PropValue) -> Value<'static> {
    match v {
        PropValue::Bool(b) => Value::from(*b),
        PropValue::U64(n) => Value::from(*n),
        PropValue::U32(n) => Value::from(*n),
        PropValue::I32(n) => Value::from(*n),
        PropValue::Str(s) => Value::from(s.clone()),
        PropValue::Bytes(b) => Value::from(b.clone()),
        PropValue::Pairs(p) => Value::from(p.clone()),
    }
}

/// What the machine's scope unit is made with.
pub struct Scope<'a> {
    pub machine: &'a str,
    pub leader: u32,
    pub slice: Option<&'a str>,
    pub kill_signal: i32,
    /// Device nodes bound into the machine, with "r" or "rw".
    pub devices: Vec<(String, String)>,
    pub properties: &'a [Property],
}

impl Scope<'_> {
    /// The properties common to a scope made by us or by machined, as the
    /// reference sets them: a closed device policy with the tun device and
    /// pseudo terminals, the kill signal, then the user's `--property=`.
    fn machine_properties(&self) -> Vec<(String, Value<'static>)> {
        let mut allow = vec![
            ("/dev/net/tun".to_string(), "rwm".to_string()),
            ("char-pts".to_string(), "rw".to_string()),
        ];
        allow.extend(self.devices.iter().cloned());
        let mut v = vec![
            ("DevicePolicy".to_string(), Value::from("closed")),
            ("DeviceAllow".to_string(), Value::from(allow)),
            ("KillSignal".to_string(), Value::from(self.kill_signal)),
            ("KillMode".to_string(), Value::from("mixed")),
        ];
        v.extend(
            self.properties
                .iter()
                .map(|p| (p.name.clone(), to_value(&p.value))),
        );
        v
    }
}

/// `StartTransientUnit` of `machine-NAME.scope` holding the leader, and
/// wait until systemd has started it (the leader is then in it).
pub fn start_scope(scope: &Scope) -> Outcome {
    in_helper(|| {
        let conn = system()?;
        let mut props = vec![
            ("PIDs".to_string(), Value::from(vec![scope.leader])),
            (
                "Description".to_string(),
                Value::from(format!("Container {}", scope.machine)),
            ),
            ("Delegate".to_string(), Value::from(true)),
            ("CollectMode".to_string(), Value::from("inactive-or-failed")),
            (
                "Slice".to_string(),
                Value::from(scope.slice.unwrap_or("machine.slice").to_string()),
            ),
        ];
        props.extend(scope.machine_properties());
        // Subscribed before the call, so the signal cannot pass us by.
        let jobs = job_removed(&conn)?;
        let aux: Vec<(String, Vec<(String, Value)>)> = vec![];
        let reply = systemd(
            &conn,
            "StartTransientUnit",
            &(crate::cgroup::scope_name(scope.machine), "fail", props, aux),
        )
        .map_err(failed)?;
        let job: OwnedObjectPath = reply.body().deserialize().map_err(failed)?;
        for msg in jobs {
            let msg = msg.map_err(failed)?;
            let Ok((_, path, _, result)) = msg
                .body()
                .deserialize::<(u32, OwnedObjectPath, String, String)>()
            else {
                continue;
            };
            if path == job {
                return match result.as_str() {
                    "done" => Ok(()),
                    r => Err(Failure::Failed(format!(
                        "systemd could not start {}: {r}",
                        crate::cgroup::scope_name(scope.machine)
                    ))),
                };
            }
        }
        Err(Failure::Failed("the system bus went away".into()))
    })
}

/// What machined is told about the machine.
pub struct Registration<'a> {
    pub machine: &'a str,
    pub id: [u8; 16],
    pub service: &'a str,
    pub leader: u32,
    pub root: &'a str,
    pub ifindices: Vec<i32>,
}

type MachineFields<'a> = (&'a str, Vec<u8>, &'a str, &'a str, u32, &'a str, Vec<i32>);

impl Registration<'_> {
    /// The arguments `sayssusai` both registration calls start with.
    fn fields(&self) -> MachineFields<'_> {
        (
            self.machine,
            self.id.to_vec(),
            self.service,
            "container",
            self.leader,
            self.root,
            self.ifindices.clone(),
        )
    }
}

/// One call to machined's manager, in a helper.
fn call_machined<B>(method: &str, body: &B) -> Outcome
where
    B: serde::Serialize + zbus::zvariant::DynamicType,
{
    in_helper(|| machined(&system()?, method, body).map(drop).map_err(failed))
}

/// `CreateMachineWithNetwork`: machined makes the scope (with our
/// properties) and registers the machine; it answers once the scope runs.
pub fn create_machine(reg: &Registration, scope: &Scope) -> Outcome {
    let mut props = vec![];
    if let Some(slice) = scope.slice {
        props.push(("Slice".to_string(), Value::from(slice.to_string())));
    }
    props.extend(scope.machine_properties());
    call_machined("CreateMachineWithNetwork", &{
        let (name, id, service, class, leader, root, ifindices) = reg.fields();
        (name, id, service, class, leader, root, ifindices, props)
    })
}

/// `RegisterMachineWithNetwork`: the machine stays in the unit it runs in
/// (`--keep-unit`).
pub fn register_machine(reg: &Registration) -> Outcome {
    call_machined("RegisterMachineWithNetwork", &reg.fields())
}

/// Once the machine has ended: `UnregisterMachine` if it was registered,
/// and with `scope`, stop the scope and wait (up to five seconds) until
/// systemd has dropped it, so the name can be used again at once (systemd
/// refuses a new unit of a name still loaded).
pub fn end_machine(machine: &str, registered: bool, scope: bool) -> Outcome {
    in_helper(|| {
        let conn = system()?;
        if registered {
            let _ = machined(&conn, "UnregisterMachine", &(machine,));
        }
        if !scope {
            return Ok(());
        }
        // Stopped now rather than when systemd notices it emptied (an
        // inotify event later, some milliseconds); leftovers die with it,
        // as the reference's KillUnit would kill them.
        let unit = crate::cgroup::scope_name(machine);
        let _ = systemd(&conn, "StopUnit", &(unit.as_str(), "replace"));
        for _ in 0..5000 {
            match systemd(&conn, "GetUnit", &(unit.as_str(),)) {
                Err(zbus::Error::MethodError(name, ..))
                    if name.as_str() == "org.freedesktop.systemd1.NoSuchUnit" =>
                {
                    return Ok(())
                }
                Err(e) => return Err(failed(e)),
                Ok(_) => std::thread::sleep(std::time::Duration::from_millis(1)),
            }
        }
        Err(Failure::Failed(format!("{unit} did not go away")))
    })
}

/// What the calls for a delegated scope need of a connection to
/// systemd's manager: the system bus through zbus (as runc), or its
/// private socket (`private.rs`) where no bus daemon runs.
enum Manager {
    Bus(Connection, Box<MessageIterator>),
    Private(super::private::Conn),
}

/// A method's error: its D-Bus name and message.
type CallError = (String, String);

const NO_SUCH_UNIT: &str = "org.freedesktop.systemd1.NoSuchUnit";

/// How long a call over the private socket may wait for its answer.
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl Manager {
    fn open() -> Result<Manager, Failure> {
        let bus = match Connection::system() {
            Ok(conn) => {
                // Subscribed before any call, so a job's JobRemoved (sent
                // to who queued the job) cannot pass us by.
                let jobs = job_removed(&conn)?;
                return Ok(Manager::Bus(conn, Box::new(jobs)));
            }
            Err(e) => e,
        };
        super::private::Conn::open(CALL_TIMEOUT)
            .map(Manager::Private)
            .map_err(|e| {
                Failure::Unavailable(format!(
                    "cannot reach systemd: system bus: {bus}; {}: {e}",
                    super::private::SOCKET
                ))
            })
    }

    /// A call whose arguments are strings; its returned path, if any.
    fn call(&mut self, member: &str, args: &[&str]) -> Result<Option<String>, CallError> {
        match self {
            Manager::Bus(conn, _) => {
                let reply = match args {
                    [a] => systemd(conn, member, &(a,)),
                    [a, b] => systemd(conn, member, &(a, b)),
                    _ => unreachable!("calls of one or two strings"),
                }
                .map_err(bus_error)?;
                Ok(reply
                    .body()
                    .deserialize::<OwnedObjectPath>()
                    .ok()
                    .map(|p| p.to_string()))
            }
            Manager::Private(p) => private_reply(p.call(
                member,
                &"s".repeat(args.len()),
                &super::private::strings_body(args),
            )),
        }
    }

    /// `StartTransientUnit(unit, "replace", props, [])`; the job's path.
    fn start_transient(
        &mut self,
        unit: &str,
        props: &[(&str, super::private::Arg)],
    ) -> Result<String, CallError> {
        use super::private::Arg;
        let job = match self {
            Manager::Bus(conn, _) => {
                let props: Vec<(&str, Value)> = props
                    .iter()
                    .map(|(k, v)| {
                        let v = match v {
                            Arg::Str(s) => Value::from(*s),
                            Arg::Bool(b) => Value::from(*b),
                            Arg::U32s(n) => Value::from(n.to_vec()),
                        };
                        (*k, v)
                    })
                    .collect();
                let aux: Vec<(String, Vec<(String, Value)>)> = vec![];
                let reply = systemd(conn, "StartTransientUnit", &(unit, "replace", props, aux))
                    .map_err(bus_error)?;
                reply
                    .body()
                    .deserialize::<OwnedObjectPath>()
                    .ok()
                    .map(|p| p.to_string())
            }
            Manager::Private(p) => private_reply(p.call(
                "StartTransientUnit",
                "ssa(sv)a(sa(sv))",
                &super::private::start_transient_body(unit, "replace", props),
            ))?,
        };
        job.ok_or_else(|| (String::new(), "no job in systemd's answer".into()))
    }

    /// The result of `job` ("done", "failed", ...), from `JobRemoved`.
    fn wait_job(&mut self, job: &str) -> Result<String, Failure> {
        match self {
            Manager::Bus(_, jobs) => {
                for msg in jobs.by_ref() {
                    let msg = msg.map_err(failed)?;
                    if let Ok((_, path, _, result)) =
                        msg.body()
                            .deserialize::<(u32, OwnedObjectPath, String, String)>()
                    {
                        if path.as_str() == job {
                            return Ok(result);
                        }
                    }
                }
                Err(Failure::Failed("the system bus went away".into()))
            }
            Manager::Private(p) => p
                .wait_job(job)
                .map_err(|e| Failure::Failed(format!("{}: {e}", super::private::SOCKET))),
        }
    }
}

fn bus_error(e: zbus::Error) -> CallError {
    match e {
        zbus::Error::MethodError(name, msg, _) => (name.to_string(), msg.unwrap_or_default()),
        e => (String::new(), e.to_string()),
    }
}

fn private_reply(r: std::io::Result<super::private::Reply>) -> Result<Option<String>, CallError> {
    match r {
        Ok(super::private::Reply::Return(v)) => Ok(v),
        Ok(super::private::Reply::Error(name, msg)) => Err((name, msg)),
        Err(e) => Err((String::new(), format!("{}: {e}", super::private::SOCKET))),
    }
}

/// systemd's message, or the error's name without one.
fn text((name, msg): CallError) -> String {
    if msg.is_empty() {
        name
    } else {
        msg
    }
}

/// `StartTransientUnit` of a scope holding `pid`, delegated (its subtree
/// is the caller's: `nspawn-oci --systemd-cgroup` writes its limits and
/// attaches its device program there), and wait for the job, as runc
/// does. A unit of that name left failed is reset and the start tried
/// once more (runc); one still loaded fails with systemd's words, as
/// runc's "unable to start unit".
pub fn start_delegated_scope(unit: &str, slice: &str, pid: u32, description: &str) -> Outcome {
    use super::private::Arg;
    in_helper(|| {
        let mut m = Manager::open()?;
        let pids = [pid];
        let props = [
            ("PIDs", Arg::U32s(&pids)),
            ("Slice", Arg::Str(slice)),
            ("Delegate", Arg::Bool(true)),
            ("Description", Arg::Str(description)),
            // Not ordered against shutdown.target and the like: the
            // container's runtime stops it (runc).
            ("DefaultDependencies", Arg::Bool(false)),
            // Unloaded once inactive, failed or not: nothing left to
            // refuse the next container of its name.
            ("CollectMode", Arg::Str("inactive-or-failed")),
        ];
        let job = match m.start_transient(unit, &props) {
            Err((name, _)) if name == "org.freedesktop.systemd1.UnitExists" => {
                let _ = m.call("ResetFailedUnit", &[unit]);
                m.start_transient(unit, &props)
            }
            r => r,
        }
        .map_err(|e| Failure::Failed(format!("unable to start unit {unit:?}: {}", text(e))))?;
        match m.wait_job(&job)?.as_str() {
            "done" => Ok(()),
            r => {
                let _ = m.call("ResetFailedUnit", &[unit]);
                Err(Failure::Failed(format!(
                    "error creating systemd unit {unit}: got {r}"
                )))
            }
        }
    })
}

/// `StopUnit(unit, "replace")` and wait (up to five seconds) until
/// systemd has dropped it, with its cgroups; a unit that is not there
/// (an emptied scope is stopped and collected by systemd itself) is fine.
pub fn stop_unit(unit: &str) -> Outcome {
    in_helper(|| {
        let mut m = Manager::open()?;
        match m.call("StopUnit", &[unit, "replace"]) {
            Err((name, _)) if name == NO_SUCH_UNIT => return Ok(()),
            r => r.map_err(|e| Failure::Failed(text(e)))?,
        };
        for _ in 0..5000 {
            match m.call("GetUnit", &[unit]) {
                Err((name, _)) if name == NO_SUCH_UNIT => return Ok(()),
                Err(e) => return Err(Failure::Failed(text(e))),
                Ok(_) => std::thread::sleep(std::time::Duration::from_millis(1)),
            }
        }
        Err(Failure::Failed(format!("{unit} did not go away")))
    })
}
