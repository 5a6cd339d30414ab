/// Every limit of a node, in one place (STYLE.md: "put a limit on everything").
/// Units and `Max` last in names.
public struct Limits: Sendable {
    /// Largest stored value, as compact JSON text.
    public var valueBytesMax: Int = 1 << 20
    /// Largest request body accepted (a commit may carry many values).
    public var requestBytesMax: Int = 8 << 20
    /// Deepest JSON nesting accepted in a request.
    public var jsonDepthMax: Int = 128
    /// Pointers read or written by one transaction.
    public var pointersPerTxnMax: Int = 10_000
    /// Pointers in one batch read.
    public var batchReadMax: Int = 1_000
    /// Requests in one `POST /batch`.
    public var batchRequestsMax: Int = 1_000
    /// Bytes of read results (values, ids, versions) in one answer: more is 413 `too_large`
    /// (1,000 pointers of 1 MiB would otherwise build a gigabyte). Keep it well above
    /// `valueBytesMax`, or a single large value cannot be read at all.
    public var answerBytesMax: Int = 16 << 20
    /// Bytes of read results in all answers of one `POST /batch`: an item past it is 503
    /// `overloaded` (retryable). Below the client library's 64 MiB answer limit.
    public var batchAnswerBytesMax: Int = 32 << 20
    /// Bytes of read results in all answers the node is building or sending at once: a
    /// request that would pass it is 503 `overloaded` (retryable). Bounds the memory of
    /// many large reads arriving together; keep it above `batchAnswerBytesMax`.
    public var answerBytesInFlightMax: Int = 256 << 20
    /// Default idle time between a transaction's requests before it is aborted.
    public var txnIdleTimeoutMs: Int = 30_000
    /// Largest idle timeout a client may ask for.
    public var txnIdleTimeoutMsMax: Int = 300_000
    /// Whole lifetime of a transaction, however active.
    public var txnLifetimeMs: Int = 300_000
    /// Transactions open on a node at once; beyond it `begin` answers 503 `overloaded`.
    public var openTxnsMax: Int = 10_000
    /// Finished transactions remembered for `GET /txn/{t}` and idempotent commit.
    public var finishedTxnsMax: Int = 100_000
    /// Lease of a write intent; a reader meeting an expired one asks whether its owner lives.
    public var intentLeaseMs: Int = 10_000
    /// How long a read waits for a lower intent to resolve before a retryable conflict.
    public var intentWaitMs: Int = 5_000
    /// Waiters on intents per shard.
    public var waitersPerShardMax: Int = 10_000
    /// Watchers (long-polls, event streams, blocked `retry()`s) registered at once.
    public var watchersMax: Int = 100_000
    /// Longest wait of one long-poll (`POST /watch`).
    public var watchTimeoutMsMax: Int = 60_000
    /// Pointers one watch may name: as many as one transaction may touch, so that `retry()`
    /// can wait on any transaction's read set.
    public var watchPointersMax: Int = 10_000
    /// Bytes of pointer ids all watchers together may name (ids counted twice, plus table
    /// overhead); beyond it a watch answers 503 `overloaded`.
    public var watcherBytesMax: Int = 64 << 20
    /// Pointers (version chains) kept in memory per shard before cold ones are evicted.
    public var pointersInMemoryPerShardMax: Int = 32_768
    /// Bytes of values kept in memory per shard (64 shards: 512 MiB) before cold pointers are
    /// evicted; with large values this, not the pointer count, bounds memory.
    public var valueBytesInMemoryPerShardMax: Int = 8 << 20
    /// Versions kept in memory per pointer; older ones are read from the store.
    public var versionsInMemoryPerPointerMax: Int = 8
    /// Entries of a shard's timestamp cache before the oldest are folded into its floor.
    public var timestampCacheEntriesPerShardMax: Int = 65_536
    /// Commits written by one group-commit store transaction.
    public var groupCommitBatchMax: Int = 512
    /// Commits queued for the store writer; beyond it commits answer 503 `overloaded`.
    public var commitQueueMax: Int = 10_000
    /// Internal retry deadline of single-request writes (`PUT /ptr/{p}`, `POST /txn`).
    public var autoRetryDeadlineMs: Int = 5_000
    /// Retries of the node's own (one-shots, plain writes) waiting in line for their turn on
    /// contended pointers; past it, a retry backs off without a turn.
    public var retryTurnWaitersMax: Int = 1_000
    /// How far ahead of this node's physical clock a client token (`Restm-After`) may be.
    public var clockOffsetMaxMs: Int = 500
    /// How far ahead of the clock the durable timestamp ceiling is kept.
    public var ceilingLeadMs: Int = 2_000
    /// Snapshot reads (`?at=`) reach back this far; older answers 410 `pruned`.
    public var retentionMs: Int = 600_000
    /// Version GC: a pass over every pointer starts this long after the last one ended.
    public var gcPassIntervalMs: Int = 1_000
    /// Pointers pruned per GC step (one store transaction, which commits wait behind).
    public var gcPointersPerStep: Int = 256
    /// Records of committed transactions are kept this long (for `GET /txn/{t}` and the
    /// resolution of unknown outcomes), and at least as long as the retention window.
    public var txnRecordRetentionMs: Int = 3_600_000
    /// Entries kept in `/sys/logs`.
    public var logEntriesMax: Int = 1_000
    /// Longest `limit` of history and listing pages.
    public var pageItemsMax: Int = 1_000

    public init() {}

    /// Settings that contradict each other, each as a sentence (empty when consistent). A
    /// node logs them as warnings when it opens; they are not refused, because tests shrink
    /// single limits on purpose.
    public var problems: [String] {
        var out: [String] = []
        let txnMs = max(txnLifetimeMs, txnIdleTimeoutMsMax, intentLeaseMs, autoRetryDeadlineMs)
        if txnRecordRetentionMs < 2 * txnMs {
            out.append(
                "txnRecordRetentionMs (\(txnRecordRetentionMs)) is less than twice the longest a transaction, its intents or a retried request may live (\(txnMs) ms): "
                    + "records and fences may be pruned while a client may still ask about them or resend them")
        }
        if answerBytesMax < valueBytesMax + 1_024 {
            out.append("answerBytesMax (\(answerBytesMax)) is not above valueBytesMax (\(valueBytesMax)): a value of the largest size cannot be read")
        }
        if batchAnswerBytesMax < answerBytesMax {
            out.append("batchAnswerBytesMax (\(batchAnswerBytesMax)) is below answerBytesMax (\(answerBytesMax)): some answers fit alone but never in a batch")
        }
        if answerBytesInFlightMax < max(answerBytesMax, batchAnswerBytesMax) {
            out.append(
                "answerBytesInFlightMax (\(answerBytesInFlightMax)) is below answerBytesMax or batchAnswerBytesMax: the largest answers are refused even on an idle node")
        }
        return out
    }
}
