//go:build bench

package bench

import (
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"path/filepath"
	"testing"

	gossh "golang.org/x/crypto/ssh"
)

// BenchmarkHandshake is the CPU one SSH login's key exchange and
// public-key authentication costs, client and server together in this
// process (as in part 3, where both run on the same 2 CPUs), per key
// exchange: the embedded server offers mlkem768x25519-sha256 first, and
// x/crypto's client (part 3's) and OpenSSH 9.9+ pick it. Run with
//
//	go test -tags bench -run '^$' -bench Handshake -cpu 1 ./bench
//
// (-cpu 1: the two sides take turns, so ns/op is their CPU).
func BenchmarkHandshake(b *testing.B) {
	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	host, err := gossh.NewSignerFromKey(hostPriv)
	if err != nil {
		b.Fatal(err)
	}
	_, userPriv, _ := ed25519.GenerateKey(rand.Reader)
	user, err := gossh.NewSignerFromKey(userPriv)
	if err != nil {
		b.Fatal(err)
	}
	for _, kex := range []string{gossh.KeyExchangeMLKEM768X25519, gossh.KeyExchangeCurve25519, gossh.KeyExchangeECDHP256} {
		b.Run(kex, func(b *testing.B) {
			scfg := &gossh.ServerConfig{
				Config: gossh.Config{KeyExchanges: []string{kex}},
				PublicKeyCallback: func(_ gossh.ConnMetadata, k gossh.PublicKey) (*gossh.Permissions, error) {
					return &gossh.Permissions{}, nil
				},
			}
			scfg.AddHostKey(host)
			ccfg := &gossh.ClientConfig{
				Config:          gossh.Config{KeyExchanges: []string{kex}},
				User:            "bench",
				Auth:            []gossh.AuthMethod{gossh.PublicKeys(user)},
				HostKeyCallback: gossh.FixedHostKey(host.PublicKey()),
			}
			ln, err := net.Listen("unix", filepath.Join(b.TempDir(), "sock"))
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			for b.Loop() {
				c, err := net.Dial("unix", ln.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				s, err := ln.Accept()
				if err != nil {
					b.Fatal(err)
				}
				done := make(chan error, 1)
				go func() {
					sc, chans, reqs, err := gossh.NewServerConn(s, scfg)
					if err == nil {
						go gossh.DiscardRequests(reqs)
						go func() {
							for ch := range chans {
								ch.Reject(gossh.Prohibited, "")
							}
						}()
						defer sc.Close()
					}
					done <- err
				}()
				cc, _, _, err := gossh.NewClientConn(c, "bench", ccfg)
				if err != nil {
					b.Fatal(err)
				}
				if err := <-done; err != nil {
					b.Fatal(err)
				}
				cc.Close()
			}
		})
	}
}
