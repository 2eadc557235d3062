import { describe, expect, it } from 'vitest';
import { createSlots } from '../src/concurrency';

describe('createSlots', () => {
  it('gives out at most its count; a waiter gets the next slot given back, first come first served', async () => {
    const slots = createSlots(2);
    const first = (await slots.take(0))!;
    const second = (await slots.take(0))!;
    const order: string[] = [];
    const third = slots.take(5_000).then((release) => (order.push('third'), release));
    const fourth = slots.take(5_000).then((release) => (order.push('fourth'), release));
    expect(await slots.take(10)).toBeUndefined();
    first();
    (await third)!();
    second();
    (await fourth)!();
    expect(order).toEqual(['third', 'fourth']);
  });

  it('a slot given back twice counts once; a waiter that gave up takes nothing', async () => {
    const slots = createSlots(1);
    const release = (await slots.take(0))!;
    expect(await slots.take(10)).toBeUndefined();
    release();
    release();
    const again = (await slots.take(0))!;
    expect(again).toBeTypeOf('function');
    expect(await slots.take(10)).toBeUndefined();
    again();
    expect(await slots.take(0)).toBeTypeOf('function');
  });
});
