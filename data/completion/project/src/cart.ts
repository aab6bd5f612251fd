// A shopping cart: lines of products, a subtotal and a discount code.

export interface CartLine {
  sku: string;
  name: string;
  unitPrice: number;
  quantity: number;
}

export class Cart {
  private lines: CartLine[] = [];

  add(line: CartLine): void {
    const existing = this.lines.find((l) => l.sku === line.sku);
    if (existing) {
      existing.quantity += line.quantity;
    } else {
      this.lines.push({ ...line });
    }
  }

  subtotal(): number {
    return this.lines.reduce((sum, l) => sum + l.unitPrice * l.quantity, 0);
  }

}
