import { Cart } from './cart';

test('adds the same product twice as one line', () => {
  const cart = new Cart();
  cart.add({ sku: 'A1', name: 'Mug', unitPrice: 8, quantity: 1 });
  cart.add({ sku: 'A1', name: 'Mug', unitPrice: 8, quantity: 2 });
  expect(cart.subtotal()).toBe(24);
});
