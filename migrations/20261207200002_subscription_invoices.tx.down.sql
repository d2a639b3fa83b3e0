DROP TABLE IF EXISTS subscription_invoice_payments;
DROP TABLE IF EXISTS subscription_invoices;
