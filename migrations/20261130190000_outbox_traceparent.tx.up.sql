-- W3C trace context of the transaction that wrote an outbox row, so the relay
-- publishes the PURCHASES message in the same trace. NULL when tracing is off.
ALTER TABLE outbox ADD COLUMN traceparent text;
