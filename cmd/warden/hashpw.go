package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// runHashPassword reads a password or token on stdin and prints its hashes.
func runHashPassword(ctx context.Context, args []string) int {
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(os.Stderr, "warden hash-password: nothing on stdin")
		return 2
	}
	secret := strings.TrimRight(line, "\r\n")
	h, err := bcrypt.GenerateFromPassword([]byte(secret), bcrypt.DefaultCost)
	if err != nil {
		fmt.Fprintln(os.Stderr, "warden hash-password:", err)
		return 1
	}
	sum := sha256.Sum256([]byte(secret))
	fmt.Printf("bcrypt: %s\nsha256: sha256:%s\n", h, hex.EncodeToString(sum[:]))
	return 0
}
