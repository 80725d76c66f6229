package notify

import "golang.org/x/time/rate"

// SetLimiter replaces a target's rate limiter, so a test of the rate rule
// need not wait minutes.
func (n *Notifier) SetLimiter(target string, l *rate.Limiter) { n.targets[target].lim = l }

// QueueBucket is the bbolt bucket of the persistent queue.
var QueueBucket = bktQueue
