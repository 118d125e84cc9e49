import { DlqMaxKeyBytes, DlqMaxValueBytes, dlqMessage } from './dlq';

describe('dlqMessage', () => {
  const where = { topic: 'telemetry.raw', partition: 4 };

  it('keeps the record and says where it was and why it was refused', () => {
    const m = dlqMessage({ key: Buffer.from('d-1'), value: Buffer.from('{"ts":'), offset: '17' }, where, 'bad JSON', 5);
    expect(m).toEqual({
      key: Buffer.from('d-1'),
      value: Buffer.from('{"ts":'),
      headers: { error: 'telemetry.raw[4]@17: bad JSON', source: 'stream-processor', receivedAt: '5' },
    });
  });

  it('cuts a value the broker would refuse, saying so', () => {
    const big = Buffer.alloc(3 * 1024 * 1024, 0x61);
    const m = dlqMessage({ key: null, value: big, offset: '9' }, where, 'not an event');
    expect((m.value as Buffer).length).toBe(DlqMaxValueBytes);
    expect(m.headers?.truncated).toBe(`${big.length} bytes, first ${DlqMaxValueBytes} kept`);
    expect(m.headers?.error).toBe('telemetry.raw[4]@9: not an event');
  });

  it('cuts an oversized key and reason too', () => {
    const m = dlqMessage(
      { key: Buffer.alloc(10_000, 0x6b), value: Buffer.from('x'), offset: '1' },
      where,
      'r'.repeat(5000),
    );
    expect((m.key as Buffer).length).toBe(DlqMaxKeyBytes);
    expect(m.headers?.keyTruncated).toBe(`10000 bytes, first ${DlqMaxKeyBytes} kept`);
    expect(String(m.headers?.error).length).toBeLessThan(1100);
  });

  it('passes an empty record through', () => {
    expect(dlqMessage({ key: null, value: null, offset: '0' }, where, 'empty').value).toBeNull();
  });
});
