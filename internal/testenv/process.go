package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Process is one running component, recorded in the state file so that a
// later `testenv down` (another process) can stop it by PID.
type Process struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
	// StartTime is the kernel's start time of PID (clock ticks since boot).
	// It guards against PID reuse: a PID whose start time differs is not ours.
	StartTime uint64 `json:"start_time"`
	Log       string `json:"log"`
	// Path, Args and Env are how it was started, so that a fault test can
	// stop it and start it again with the same flags (Env.Restart).
	Path string   `json:"path"`
	Args []string `json:"args"`
	Env  []string `json:"env,omitempty"`

	cmd *exec.Cmd
}

// startProcess starts path with args, output to logPath. Every component gets
// its own process group so that stopping it also stops anything it spawned
// (moto_server runs behind a pyenv shim). When owned is true the kernel kills
// the process if this one dies, so an interrupted test binary leaves nothing
// running.
func startProcess(name, path string, args []string, logPath string, env []string, owned bool) (*Process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if owned {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{Name: name, PID: cmd.Process.Pid, Log: logPath, Path: path, Args: args, Env: env, cmd: cmd}
	p.StartTime, _ = processStartTime(p.PID)
	if owned {
		go func() { _ = cmd.Wait() }()
	} else {
		// Not ours to wait for after this CLI exits; release it so that it
		// is reparented instead of left as a zombie of a long-gone parent.
		_ = cmd.Process.Release()
	}
	return p, nil
}

// Alive reports whether the recorded process is still the one we started.
func (p *Process) Alive() bool {
	if p.PID <= 0 {
		return false
	}
	st, err := processStartTime(p.PID)
	if err != nil || (p.StartTime != 0 && st != p.StartTime) {
		return false
	}
	state, _ := processState(p.PID)
	return state != "Z" && state != "X"
}

// Stop terminates the process group politely, then forcibly after grace.
func (p *Process) Stop(grace time.Duration) error {
	if !p.Alive() {
		return nil
	}
	gone := func(context.Context) (bool, error) { return !p.Alive(), nil }
	_ = syscall.Kill(-p.PID, syscall.SIGTERM)
	if wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, grace, true, gone) == nil {
		return nil
	}
	_ = syscall.Kill(-p.PID, syscall.SIGKILL)
	if err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 5*time.Second, true, gone); err != nil {
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.Name, p.PID)
	}
	return nil
}

// Kill ends the process group at once, as a crash or an OOM kill would:
// no graceful shutdown, connections dropped mid-request.
func (p *Process) Kill() error {
	if !p.Alive() {
		return nil
	}
	_ = syscall.Kill(-p.PID, syscall.SIGKILL)
	gone := func(context.Context) (bool, error) { return !p.Alive(), nil }
	if err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 5*time.Second, true, gone); err != nil {
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.Name, p.PID)
	}
	return nil
}

// processStartTime reads field 22 of /proc/PID/stat.
func processStartTime(pid int) (uint64, error) {
	fields, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	if len(fields) < 20 {
		return 0, errors.New("short /proc stat")
	}
	// fields start at field 3 (state), so field 22 is index 19.
	return strconv.ParseUint(fields[19], 10, 64)
}

func processState(pid int) (string, error) {
	fields, err := statFields(pid)
	if err != nil {
		return "", err
	}
	return fields[0], nil
}

// statFields returns the fields of /proc/PID/stat after the command name,
// which may itself contain spaces and parentheses.
func statFields(pid int) ([]string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, errors.New("malformed /proc stat")
	}
	return strings.Fields(s[i+1:]), nil
}

// freePorts reserves n distinct loopback ports. They are released before the
// components bind them; on a busy machine another process could take one in
// between, which shows up as a component failing to start.
func freePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		addr, ok := l.Addr().(*net.TCPAddr)
		if !ok {
			return nil, fmt.Errorf("unexpected listener address %v", l.Addr())
		}
		ports = append(ports, addr.Port)
	}
	return ports, nil
}
