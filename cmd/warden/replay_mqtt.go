package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	mqttreplay "github.com/smartcommunity/warden/edge/replay/mqtt"
)

// runReplay dispatches "replay mqtt" and "replay rtsp".
func runReplay(ctx context.Context, args []string) int {
	if len(args) > 0 {
		if f, ok := replayKinds[args[0]]; ok {
			return f(ctx, args[1:])
		}
	}
	fmt.Fprintln(os.Stderr, "usage: warden replay mqtt|rtsp [flags] FILE...")
	return 2
}

type pahoPublisher struct{ c paho.Client }

func (p pahoPublisher) Publish(ctx context.Context, topic string, qos byte, retain bool, payload []byte) error {
	t := p.c.Publish(topic, qos, retain, payload)
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func replayMQTT(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("replay mqtt", flag.ContinueOnError)
	broker := fs.String("broker", "tcp://127.0.0.1:1883", "broker URL")
	speed := fs.Float64("speed", 1, "playback speed; 0 = as fast as possible")
	user := fs.String("username", "", "MQTT username")
	pass := fs.String("password", os.Getenv("WARDEN_MQTT_PASSWORD"), "MQTT password (default $WARDEN_MQTT_PASSWORD)")
	quiet := fs.Bool("quiet", false, "no per-message progress on stderr")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: warden replay mqtt --broker URL [--speed X] FIXTURE.jsonl...")
		return 2
	}
	lines, err := mqttreplay.ReadFiles(fs.Args()...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "warden replay mqtt:", err)
		return 2
	}
	o := paho.NewClientOptions().AddBroker(*broker).SetClientID(fmt.Sprintf("warden-replay-%d", os.Getpid())).
		SetUsername(*user).SetPassword(*pass).SetConnectTimeout(10 * time.Second).SetAutoReconnect(false)
	c := paho.NewClient(o)
	if t := c.Connect(); !t.WaitTimeout(15*time.Second) || t.Error() != nil {
		fmt.Fprintf(os.Stderr, "warden replay mqtt: connect %s: %v\n", *broker, t.Error())
		return 1
	}
	defer c.Disconnect(250)
	var progress func(int, mqttreplay.Line)
	if !*quiet {
		progress = func(i int, l mqttreplay.Line) {
			fmt.Fprintf(os.Stderr, "[%4d/%d] +%6dms %s\n", i+1, len(lines), l.AtMs, l.Topic)
		}
	}
	if err := mqttreplay.Play(ctx, pahoPublisher{c}, lines, *speed, progress); err != nil {
		fmt.Fprintln(os.Stderr, "warden replay mqtt:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "published %d messages\n", len(lines))
	return 0
}
