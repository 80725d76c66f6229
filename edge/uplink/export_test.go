package uplink

// ResendWindow is how many accepted batches a crash can make the HTTP
// target send again: those not yet saved plus the one in flight.
const ResendWindow = maxUnsaved + 1
