package siren_test

import (
	"testing"

	"github.com/smartcommunity/warden/drivers"
	"github.com/smartcommunity/warden/drivers/internal/kittest"
	_ "github.com/smartcommunity/warden/drivers/siren"
	"github.com/smartcommunity/warden/edge/config"
)

func TestFixtures(t *testing.T) { kittest.Run(t, "testdata/*.jsonl") }

func FuzzHandle(f *testing.F) { kittest.Fuzz(f, "testdata/*.jsonl") }

func TestCommand(t *testing.T) {
	dev, probs := drivers.Default.New(config.Device{ID: "s", Kind: "siren", Driver: "zigbee2mqtt", Topic: "zigbee2mqtt/s"})
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	cmd := dev.(drivers.Commander)
	for action, want := range map[string]string{
		"on":  `{"warning":{"mode":"emergency","level":"very_high","strobe":true,"duration":300}}`,
		"off": `{"warning":{"mode":"stop"}}`,
	} {
		topic, p, err := cmd.Command(action)
		if err != nil || topic != "zigbee2mqtt/s/set" || string(p) != want {
			t.Errorf("%s: %s %s %v", action, topic, p, err)
		}
	}
	if _, _, err := cmd.Command("loud"); err == nil {
		t.Error("unknown command accepted")
	}
	dev, _ = drivers.Default.New(config.Device{ID: "s", Kind: "siren", Driver: "zigbee2mqtt", Topic: "z/s",
		Extra: map[string]any{"mode": "fire", "level": "high", "strobe": false, "duration": 60}})
	if _, p, _ := dev.(drivers.Commander).Command("on"); string(p) != `{"warning":{"mode":"fire","level":"high","strobe":false,"duration":60}}` {
		t.Errorf("custom on: %s", p)
	}
}

func TestConfigProblems(t *testing.T) {
	for _, c := range []struct {
		extra map[string]any
		key   string
	}{
		{map[string]any{"mode": "stop"}, "mode"},
		{map[string]any{"level": "deafening"}, "level"},
		{map[string]any{"strobe": "yes"}, "strobe"},
		{map[string]any{"duration": 0}, "duration"},
		{map[string]any{"duration": 1.5}, "duration"},
		{map[string]any{"volume": 3}, "volume"},
	} {
		_, probs := drivers.Default.New(config.Device{ID: "s", Kind: "siren", Driver: "zigbee2mqtt", Topic: "t", Extra: c.extra})
		if len(probs) != 1 || probs[0].Key != c.key {
			t.Errorf("%v: %v, want key %s", c.extra, probs, c.key)
		}
	}
}
