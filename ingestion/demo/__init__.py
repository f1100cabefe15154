"""Demo data for a European (German-speaking and international) retailer: ``manage.py seed_demo``.

- ``generator``: a deterministic generator of people and what their source systems deliver (website and shop
  Segment messages, CRM export rows, call-center and e-mail-service webhook records), streamed one person at a time.
- ``loaders``: sending it through the real sources, file import and pipeline, or writing it in bulk for benchmarks.
- ``data``: the vocabulary (names, places, phone plans, catalogue, note texts).

What later steps can rely on (names as they arrive in events):

- sources (slug, channel): ``website`` (web), ``online-shop`` (shop), ``crm`` (crm), ``call-center``
  (call_center), ``email-service`` (email);
- web: page calls (Home, Category), track "Product Viewed", "Product Added" (``cart_id``), "Checkout Started",
  identify on login (userId + traits.email on the device's anonymousId); ``context.consent.categoryPreferences``
  with the purposes ``email_marketing``, ``personalization`` and ``analytics``;
- shop: identify when an account is created (traits first_name, last_name, email, phone, street, postcode, city,
  country, birth_date), track "Order Completed" (order_id, total, revenue, currency EUR, products with product_id,
  sku, name, category, price, quantity), by userId or, for guests, anonymousId + context.traits.email;
- CRM: identify per contact, record key ``crm:<customer_no>``;
- call center: track "Call Center Note" (properties note, subject, language de|en, channel, agent, ticket_id,
  customer_no), record key ``call-center:<contact id>``;
- e-mail: track "Email Delivered", "Email Opened", "Email Link Clicked", "Email Unsubscribed" (campaign_id,
  campaign_name, email_id, url), record key ``email-service:<subscriber id>``.
"""
