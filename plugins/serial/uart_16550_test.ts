import assert from "node:assert/strict";
import {
  FCR_CLEAR_RX,
  FCR_ENABLE,
  IER_MSI,
  IER_RDA,
  IER_RLS,
  IER_THRE,
  IIR_FIFO_ENABLED,
  IIR_MSI,
  IIR_NONE,
  IIR_RDA,
  IIR_RLS,
  IIR_THRE,
  LCR_DLAB,
  LSR_DR,
  LSR_OE,
  LSR_TEMT,
  LSR_THRE,
  MCR_DTR,
  MCR_LOOP,
  MCR_OUT2,
  MCR_RTS,
  MSR_CTS,
  MSR_DCTS,
  MSR_DDSR,
  MSR_DSR,
  Uart16550,
  UART_IER,
  UART_IIR_FCR,
  UART_LCR,
  UART_LSR,
  UART_MCR,
  UART_MSR,
  UART_RBR_THR,
  UART_SCR,
} from "./uart_16550.ts";

function make(capacity?: number) {
  const out: number[] = [];
  const irq: boolean[] = [];
  const logs: string[] = [];
  const uart = new Uart16550({
    output: (b) => out.push(b),
    interrupt: (l) => irq.push(l),
    log: (_l, m) => logs.push(m),
    inputCapacity: capacity,
  });
  return { uart, out, irq, logs };
}

Deno.test("uart 16550 transmit and LSR", async (t) => {
  await t.step("THRE and TEMT always set; THR write outputs", () => {
    const { uart, out } = make();
    assert.equal(uart.read(UART_LSR), LSR_THRE | LSR_TEMT);
    for (const c of "Hi\n") uart.write(UART_RBR_THR, c.charCodeAt(0));
    assert.deepEqual(out, [0x48, 0x69, 0x0a]);
    assert.equal(uart.read(UART_LSR), LSR_THRE | LSR_TEMT);
    assert.equal(uart.stats.transmitted, 3);
  });
  await t.step("only the low byte is written", () => {
    const { uart, out } = make();
    uart.write(UART_RBR_THR, 0x1241);
    assert.deepEqual(out, [0x41]);
  });
  await t.step("DR reflects queued input; RBR pops in order", () => {
    const { uart } = make();
    assert.equal(uart.read(UART_RBR_THR), 0);
    assert.equal(uart.enqueueInput([1, 2]), 2);
    assert.equal(uart.read(UART_LSR) & LSR_DR, LSR_DR);
    assert.equal(uart.read(UART_RBR_THR), 1);
    assert.equal(uart.read(UART_RBR_THR), 2);
    assert.equal(uart.read(UART_LSR) & LSR_DR, 0);
  });
  await t.step("overrun: dropped, counted, OE until LSR read", () => {
    const { uart, logs } = make(2);
    assert.equal(uart.enqueueInput(new Uint8Array([1, 2, 3, 4])), 2);
    assert.equal(uart.stats.overruns, 2);
    assert.equal(logs.length, 1);
    assert.equal(uart.read(UART_LSR) & LSR_OE, LSR_OE);
    assert.equal(uart.read(UART_LSR) & LSR_OE, 0);
  });
  await t.step("FCR clears RX and reports FIFO enable in IIR", () => {
    const { uart } = make();
    uart.enqueueInput([1]);
    uart.write(UART_IIR_FCR, FCR_ENABLE | FCR_CLEAR_RX);
    assert.equal(uart.pendingInput, 0);
    assert.equal(uart.read(UART_IIR_FCR), IIR_FIFO_ENABLED | IIR_NONE);
    uart.write(UART_IIR_FCR, 0);
    assert.equal(uart.read(UART_IIR_FCR), IIR_NONE);
  });
});

Deno.test("uart 16550 registers", async (t) => {
  await t.step("power-on values", () => {
    const { uart } = make();
    assert.equal(uart.read(UART_IER), 0);
    assert.equal(uart.read(UART_IIR_FCR), IIR_NONE);
    assert.equal(uart.read(UART_LCR), 0x03);
    assert.equal(uart.read(UART_MCR), MCR_OUT2);
    assert.equal(uart.read(UART_MSR), 0xb0);
    assert.equal(uart.read(UART_SCR), 0);
    assert.equal(uart.divisor, 12);
  });
  await t.step("DLAB latches DLL/DLM without output or IER change", () => {
    const { uart, out } = make();
    uart.write(UART_LCR, LCR_DLAB | 0x03);
    uart.write(UART_RBR_THR, 0x01);
    uart.write(UART_IER, 0x02);
    assert.equal(uart.read(UART_RBR_THR), 0x01);
    assert.equal(uart.read(UART_IER), 0x02);
    assert.equal(uart.divisor, 0x0201);
    uart.write(UART_LCR, 0x03);
    assert.equal(uart.read(UART_IER), 0);
    assert.deepEqual(out, []);
  });
  await t.step("IER keeps 4 bits; MCR keeps 5; SCR stores", () => {
    const { uart } = make();
    uart.write(UART_IER, 0xf0);
    assert.equal(uart.read(UART_IER), 0);
    uart.write(UART_MCR, 0xff);
    assert.equal(uart.read(UART_MCR), 0x1f);
    uart.write(UART_SCR, 0x5a);
    assert.equal(uart.read(UART_SCR), 0x5a);
  });
  await t.step("bad offsets are counted no-ops", () => {
    const { uart } = make();
    assert.equal(uart.read(8), 0xff);
    uart.write(-1, 1);
    assert.equal(uart.stats.badAccesses, 2);
  });
  await t.step("reset restores power-on state", () => {
    const { uart } = make();
    uart.write(UART_IER, IER_THRE);
    uart.enqueueInput([1]);
    uart.reset();
    assert.equal(uart.read(UART_IER), 0);
    assert.equal(uart.pendingInput, 0);
    assert.equal(uart.interruptLevel, false);
  });
});

Deno.test("uart 16550 loopback", async (t) => {
  await t.step("THR goes to RBR, not to output", () => {
    const { uart, out } = make();
    uart.write(UART_MCR, MCR_LOOP);
    uart.write(UART_RBR_THR, 0x55);
    assert.deepEqual(out, []);
    assert.equal(uart.read(UART_LSR) & LSR_DR, LSR_DR);
    assert.equal(uart.read(UART_RBR_THR), 0x55);
  });
  await t.step("modem outputs loop to MSR with deltas", () => {
    const { uart } = make();
    uart.write(UART_MCR, MCR_LOOP);
    uart.read(UART_MSR); // clear deltas from entering loopback
    uart.write(UART_MCR, MCR_LOOP | MCR_RTS | MCR_DTR);
    const msr = uart.read(UART_MSR);
    assert.equal(msr & (MSR_CTS | MSR_DSR), MSR_CTS | MSR_DSR);
    assert.equal(msr & (MSR_DCTS | MSR_DDSR), MSR_DCTS | MSR_DDSR);
    assert.equal(uart.read(UART_MSR) & 0x0f, 0);
  });
});

Deno.test("uart 16550 interrupts", async (t) => {
  await t.step("THRE raised on enable, cleared by IIR read", () => {
    const { uart, irq } = make();
    uart.write(UART_IER, IER_THRE);
    assert.deepEqual(irq, [true]);
    assert.equal(uart.read(UART_IIR_FCR), IIR_THRE);
    assert.deepEqual(irq, [true, false]);
    assert.equal(uart.read(UART_IIR_FCR), IIR_NONE);
  });
  await t.step("THRE raised again after each THR write", () => {
    const { uart, irq } = make();
    uart.write(UART_IER, IER_THRE);
    uart.read(UART_IIR_FCR);
    uart.write(UART_RBR_THR, 0x41);
    assert.deepEqual(irq, [true, false, true]);
    uart.write(UART_IER, 0);
    assert.deepEqual(irq, [true, false, true, false]);
  });
  await t.step("RDA while data queued, beats THRE", () => {
    const { uart, irq } = make();
    uart.write(UART_IER, IER_RDA | IER_THRE);
    uart.enqueueInput([7]);
    assert.equal(uart.read(UART_IIR_FCR), IIR_RDA);
    assert.equal(uart.read(UART_RBR_THR), 7);
    assert.equal(uart.read(UART_IIR_FCR), IIR_THRE);
    assert.equal(uart.read(UART_IIR_FCR), IIR_NONE);
    assert.equal(irq.at(-1), false);
  });
  await t.step("RDA not raised when disabled", () => {
    const { uart, irq } = make();
    uart.enqueueInput([7]);
    assert.deepEqual(irq, []);
    uart.write(UART_IER, IER_RDA);
    assert.deepEqual(irq, [true]);
  });
  await t.step("RLS has top priority on overrun", () => {
    const { uart } = make(1);
    uart.write(UART_IER, IER_RLS | IER_RDA);
    uart.enqueueInput([1, 2]);
    assert.equal(uart.read(UART_IIR_FCR), IIR_RLS);
    uart.read(UART_LSR);
    assert.equal(uart.read(UART_IIR_FCR), IIR_RDA);
  });
  await t.step("modem status interrupt in loopback", () => {
    const { uart } = make();
    uart.write(UART_MCR, MCR_LOOP);
    uart.read(UART_MSR);
    uart.write(UART_IER, IER_MSI);
    assert.equal(uart.read(UART_IIR_FCR), IIR_NONE);
    uart.write(UART_MCR, MCR_LOOP | MCR_RTS);
    assert.equal(uart.interruptLevel, true);
    assert.equal(uart.read(UART_IIR_FCR), IIR_MSI);
    uart.read(UART_MSR);
    assert.equal(uart.interruptLevel, false);
  });
  await t.step("loopback byte raises RDA", () => {
    const { uart } = make();
    uart.write(UART_IER, IER_RDA);
    uart.write(UART_MCR, MCR_LOOP);
    uart.write(UART_RBR_THR, 1);
    assert.equal(uart.read(UART_IIR_FCR), IIR_RDA);
  });
});
